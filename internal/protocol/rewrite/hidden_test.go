package rewrite

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestHiddenTopicsAreLeftOutOfTopicLists(t *testing.T) {
	r := Default().WithHiddenTopics("__scram_proxy_state")
	names := func(ts []*string) []string {
		var out []string
		for _, t := range ts {
			out = append(out, *t)
		}
		return out
	}
	topics := []string{"orders", "__scram_proxy_state", "payments"}

	for _, v := range []int16{1, 9, 12} {
		md := kmsg.NewPtrMetadataResponse()
		md.SetVersion(v)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, "10.1.2.3", 9092
		md.Brokers = append(md.Brokers, b)
		for _, n := range topics {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = kmsg.StringPtr(n)
			md.Topics = append(md.Topics, t)
		}
		body := md.AppendTo(nil)
		out, changed, err := r.Response(nil, 3, v, body, fixed{})
		if err != nil || !changed {
			t.Fatalf("metadata v%d: changed %v, %v", v, changed, err)
		}
		got := kmsg.NewPtrMetadataResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(out); err != nil {
			t.Fatal(err)
		}
		var ts []*string
		for _, t := range got.Topics {
			ts = append(ts, t.Topic)
		}
		if g := names(ts); len(g) != 2 || g[0] != "orders" || g[1] != "payments" {
			t.Fatalf("metadata v%d for all topics lists %v", v, g)
		}
		if got.Brokers[0].Host == "10.1.2.3" {
			t.Fatal("the broker address was not rewritten any more")
		}
		// Named, the topic is refused as a broker refuses one the client
		// may not describe.
		out, _, err = r.ResponseTo(nil, 3, v, body, fixed{}, Request{NamesTopics: true})
		if err != nil {
			t.Fatal(err)
		}
		got = kmsg.NewPtrMetadataResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(out); err != nil {
			t.Fatal(err)
		}
		if d := got.Topics[1]; len(got.Topics) != 3 || *d.Topic != "__scram_proxy_state" || d.ErrorCode != 29 ||
			len(d.Partitions) != 0 || d.TopicID != [16]byte{} {
			t.Fatalf("metadata v%d, named: %+v", v, got.Topics)
		}
	}

	dtp := kmsg.NewPtrDescribeTopicPartitionsResponse()
	for _, n := range topics {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		t.Topic = kmsg.StringPtr(n)
		dtp.Topics = append(dtp.Topics, t)
	}
	out, changed, err := r.Response(nil, 75, 0, dtp.AppendTo(nil), fixed{})
	if err != nil || !changed {
		t.Fatalf("DescribeTopicPartitions: changed %v, %v", changed, err)
	}
	got := kmsg.NewPtrDescribeTopicPartitionsResponse()
	if err := got.ReadFrom(out); err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != 2 {
		t.Fatalf("DescribeTopicPartitions lists %d topics", len(got.Topics))
	}

	ld := kmsg.NewPtrDescribeLogDirsResponse()
	ld.SetVersion(2)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	for _, n := range topics {
		t := kmsg.NewDescribeLogDirsResponseDirTopic()
		t.Topic = n
		dir.Topics = append(dir.Topics, t)
	}
	ld.Dirs = append(ld.Dirs, dir)
	out, changed, err = r.Response(nil, 35, 2, ld.AppendTo(nil), fixed{})
	if err != nil || !changed {
		t.Fatalf("DescribeLogDirs: changed %v, %v", changed, err)
	}
	gotLD := kmsg.NewPtrDescribeLogDirsResponse()
	gotLD.SetVersion(2)
	if err := gotLD.ReadFrom(out); err != nil {
		t.Fatal(err)
	}
	if len(gotLD.Dirs[0].Topics) != 2 {
		t.Fatalf("DescribeLogDirs lists %d topics", len(gotLD.Dirs[0].Topics))
	}

	// Without a hidden topic in it, an answer is passed on as it came.
	dtp.Topics = dtp.Topics[:1]
	if _, changed, err := r.Response(nil, 75, 0, dtp.AppendTo(nil), fixed{}); err != nil || changed {
		t.Fatalf("an answer without the topic: changed %v, %v", changed, err)
	}
	if Default().NeedsRewrite(75, 0) {
		t.Fatal("the default registry decodes DescribeTopicPartitions")
	}
}
