package proxy

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestProtectedTopicsAreRefused: a client cannot write to, delete or
// reconfigure a topic the proxy keeps for itself, though it acts at the
// broker with an identity that may; other topics pass as before.
func TestProtectedTopicsAreRefused(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Protected = &ProtectedTopics{Names: []string{"state"}} })
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.upstream))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	adm := kadm.NewClient(direct)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "state"); err != nil {
		t.Fatal(err)
	}
	w := e.dial()
	w.Login(sasl.ScramSHA512, testUser, testPassword, 1)

	produce := func(topic string, acks int16) *kmsg.ProduceRequest {
		p := kmsg.NewPtrProduceRequest()
		p.SetVersion(9)
		p.Acks, p.TimeoutMillis = acks, 5000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = topic
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = oneRecordBatch()
		pt.Partitions = append(pt.Partitions, pp)
		p.Topics = append(p.Topics, pt)
		return p
	}
	// Both topics in one request: refused whole.
	both := produce("t", -1)
	both.Topics = append(both.Topics, produce("state", -1).Topics...)
	pr := w.RoundTrip(both).(*kmsg.ProduceResponse)
	if len(pr.Topics) != 2 || pr.Topics[1].Topic != "state" || pr.Topics[1].Partitions[0].ErrorCode != 29 || pr.Topics[0].Partitions[0].ErrorCode != 29 {
		t.Fatalf("produce naming the protected topic: %+v", pr.Topics)
	}
	// acks=0 gets no answer; the next request's answer comes in order.
	w.Send(produce("state", 0))

	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "state"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = -1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	if r := w.RoundTrip(dr).(*kmsg.DeleteRecordsResponse); r.Topics[0].Partitions[0].ErrorCode != 29 {
		t.Fatalf("delete records: %+v", r.Topics)
	}
	for _, v := range []int16{4, 6} {
		del := kmsg.NewPtrDeleteTopicsRequest()
		del.SetVersion(v)
		if v < 6 {
			del.TopicNames = []string{"state"}
		} else {
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.Topic = kmsg.StringPtr("state")
			del.Topics = append(del.Topics, dt)
		}
		if r := w.RoundTrip(del).(*kmsg.DeleteTopicsResponse); len(r.Topics) != 1 || r.Topics[0].ErrorCode != 29 {
			t.Fatalf("delete topics v%d: %+v", v, r.Topics)
		}
	}
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rs := kmsg.NewIncrementalAlterConfigsRequestResource()
	rs.ResourceType, rs.ResourceName = kmsg.ConfigResourceTypeTopic, "state"
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "cleanup.policy", kmsg.StringPtr("delete")
	rs.Configs = append(rs.Configs, cfg)
	iac.Resources = append(iac.Resources, rs)
	if r := w.RoundTrip(iac).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 29 {
		t.Fatalf("incremental alter configs: %+v", r.Resources)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "state", 3
	cp.Topics = append(cp.Topics, cpt)
	if r := w.RoundTrip(cp).(*kmsg.CreatePartitionsResponse); r.Topics[0].ErrorCode != 29 {
		t.Fatalf("create partitions: %+v", r.Topics)
	}

	// Reads are refused too: the records' keys name users and tokens.
	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(12)
	fr.MaxWaitMillis, fr.MaxBytes = 10, 1<<20
	frt := kmsg.NewFetchRequestTopic()
	frt.Topic = "state"
	frp := kmsg.NewFetchRequestTopicPartition()
	frp.PartitionMaxBytes = 1 << 20
	frt.Partitions = append(frt.Partitions, frp)
	fr.Topics = append(fr.Topics, frt)
	if r := w.RoundTrip(fr).(*kmsg.FetchResponse); len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != 29 || len(r.Topics[0].Partitions[0].RecordBatches) != 0 {
		t.Fatalf("fetch: %+v", r.Topics)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(5)
	lot := kmsg.NewListOffsetsRequestTopic()
	lot.Topic = "state"
	lop := kmsg.NewListOffsetsRequestTopicPartition()
	lop.Timestamp = -1
	lot.Partitions = append(lot.Partitions, lop)
	lo.Topics = append(lo.Topics, lot)
	if r := w.RoundTrip(lo).(*kmsg.ListOffsetsResponse); len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != 29 || r.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("list offsets: %+v", r.Topics)
	}

	// Nothing reached the broker; other topics work through the proxy.
	ends, err := adm.ListEndOffsets(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("state", 0); o.Offset != 0 {
		t.Fatalf("the protected topic holds %d records", o.Offset)
	}
	if tds, _ := adm.ListTopics(ctx, "state"); len(tds["state"].Partitions) != 1 {
		t.Fatal("the protected topic was changed")
	}
	if r := w.RoundTrip(produce("t", -1)).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce to another topic: %+v", r.Topics)
	}
	fr.Topics[0].Topic = "t"
	if r := w.RoundTrip(fr).(*kmsg.FetchResponse); r.Topics[0].Partitions[0].ErrorCode != 0 || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("fetch from another topic: %+v", r.Topics)
	}
}

// oneRecordBatch is a v2 batch of one record (key "k", empty value).
func oneRecordBatch() []byte {
	rec := kmsg.NewRecordBatch()
	rec.Magic, rec.NumRecords = 2, 1
	rec.ProducerID, rec.ProducerEpoch, rec.FirstSequence = -1, -1, -1
	// length 7 (zigzag 14): attributes, timestamp and offset deltas, key
	// length 1 (zigzag 2), "k", value length 0, no headers.
	rec.Records = []byte{14, 0, 0, 0, 2, 'k', 0, 0}
	rec.Length = int32(49 + len(rec.Records))
	b := rec.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestProtectedTopicsByID: requests that name topics by id (DeleteTopics
// v6+, Produce v13+) are refused for the protected topic's id, and an id
// of zeros protects nothing.
func TestProtectedTopicsByID(t *testing.T) {
	id := [16]byte{1, 2, 3}
	p := &ProtectedTopics{Names: []string{"state"}, IDs: [][16]byte{id}}
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = id
	del.Topics = append(del.Topics, dt)
	if _, hit := refuseProtected(del, p); !hit {
		t.Fatal("DeleteTopics by the protected id passed")
	}
	del.Topics[0].TopicID = [16]byte{9}
	if _, hit := refuseProtected(del, p); hit {
		t.Fatal("DeleteTopics of another id refused")
	}
	pr := kmsg.NewPtrProduceRequest()
	pt := kmsg.NewProduceRequestTopic()
	pt.TopicID = id
	pr.Topics = append(pr.Topics, pt)
	if _, hit := refuseProtected(pr, p); !hit {
		t.Fatal("Produce by the protected id passed")
	}
	if _, hit := refuseProtected(pr, &ProtectedTopics{IDs: [][16]byte{{}}}); hit {
		t.Fatal("an all-zero id protected a topic")
	}
	fr := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = id
	fr.Topics = append(fr.Topics, ft)
	if _, hit := refuseProtected(fr, p); !hit {
		t.Fatal("Fetch by the protected id passed")
	}
	fr.Topics[0].TopicID = [16]byte{9}
	if _, hit := refuseProtected(fr, p); hit {
		t.Fatal("Fetch of another id refused")
	}
}
