package proxy

import (
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// TestNoUpstreamEndpointAtAnyAdvertisedVersion sends every endpoint-bearing
// request at every version the proxy advertises, through a proxy in front of
// a three-broker cluster, and fails if any response carries an upstream
// broker's host and port. Produce goes to a partition led by another broker,
// so KIP-951 node endpoints are exercised where the upstream sends them.
func TestNoUpstreamEndpointAtAnyAdvertisedVersion(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "t"),
		kfake.ListenFn(func(n, _ string) (net.Listener, error) { return net.Listen(n, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	for p := int32(0); p < 3; p++ {
		if err := cluster.MoveTopicPartition("t", p, p); err != nil {
			t.Fatal(err)
		}
	}
	var patterns [][]byte
	for _, a := range cluster.ListenAddrs() {
		host, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		patterns = append(patterns, binary.BigEndian.AppendUint32([]byte(host), uint32(port)))
	}
	e := newEnv(t, func(o *Options) {
		d, _ := upstream.NewDialer([]string{cluster.ListenAddrs()[0]}, time.Second) // node 0
		o.Upstream = d
		o.Versions = upstream.NewVersionProbe(d, 0, nil)
	})
	w := e.dial()
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(0)
	table := w.RoundTrip(av).(*kmsg.ApiVersionsResponse)
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	ranges := map[int16][2]int16{}
	for _, k := range table.ApiKeys {
		ranges[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	var topicID [16]byte
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	meta.Topics = append(meta.Topics, mt)
	if m := w.RoundTrip(meta).(*kmsg.MetadataResponse); len(m.Topics) == 1 {
		topicID = m.Topics[0].TopicID
	}
	build := map[int16]func() kmsg.Request{
		3: func() kmsg.Request { return kmsg.NewPtrMetadataRequest() },
		10: func() kmsg.Request {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.CoordinatorKey, r.CoordinatorKeys = "g", []string{"g"}
			return r
		},
		60: func() kmsg.Request { return kmsg.NewPtrDescribeClusterRequest() },
		1: func() kmsg.Request {
			r := kmsg.NewPtrFetchRequest()
			r.MaxWaitMillis, r.MaxBytes = 10, 1<<20
			topic := kmsg.NewFetchRequestTopic()
			topic.Topic = "t"
			topic.TopicID = topicID
			part := kmsg.NewFetchRequestTopicPartition()
			part.Partition, part.PartitionMaxBytes = 2, 1<<20
			topic.Partitions = append(topic.Partitions, part)
			r.Topics = append(r.Topics, topic)
			return r
		},
		0: func() kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Acks, r.TimeoutMillis = 1, 1000
			topic := kmsg.NewProduceRequestTopic()
			topic.Topic = "t"
			part := kmsg.NewProduceRequestTopicPartition()
			part.Partition = 2 // led by node 2; this connection reaches node 0
			topic.Partitions = append(topic.Partitions, part)
			r.Topics = append(r.Topics, topic)
			return r
		},
	}
	checked := 0
	for key, mk := range build {
		rg, ok := ranges[key]
		if !ok {
			t.Fatalf("%s not advertised", kmsg.NameForKey(key))
		}
		for v := rg[0]; v <= rg[1]; v++ {
			req := mk()
			req.SetVersion(v)
			corr := w.Send(req)
			b, err := w.ReadFrame()
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			if int32(binary.BigEndian.Uint32(b)) != corr {
				t.Fatalf("%s v%d: correlation", kmsg.NameForKey(key), v)
			}
			for _, p := range patterns {
				if bytes.Contains(b, p) {
					t.Errorf("%s v%d response carries an upstream endpoint", kmsg.NameForKey(key), v)
				}
			}
			checked++
		}
	}
	t.Logf("checked %d (api, version) responses", checked)
	if checked < 20 {
		t.Fatalf("only %d responses checked", checked)
	}
}
