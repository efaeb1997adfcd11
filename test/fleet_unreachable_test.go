package test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// checkUnreachable: a client of the proxies, logged in as a plain user,
// cannot write into the state topic or delete it through them, even when
// it knows the name: every proxy acts upstream as itself, so the brokers'
// ACLs cannot tell such a client from the proxy. A tombstone produced for a
// user (through the proxy that fronts the partition's leader) must be
// refused with TOPIC_AUTHORIZATION_FAILED and the user must still log in
// everywhere; so must DeleteRecords there, and IncrementalAlterConfigs and
// DeleteTopics at the proxy of the controller; the topic keeps its records.
func (f *stateFleet) checkUnreachable(t *testing.T) {
	t.Helper()
	denied := kerr.TopicAuthorizationFailed.Code
	ctx := ctxT(t, time.Minute)
	f.addUser(t, 0, "frank", "frank-secret", nil)
	frank := scram.Auth{User: "frank", Pass: "frank-secret"}.AsSha512Mechanism()
	f.expectEverywhere(t, "frank added through proxy 0", 0, frank, time.Now(), true)
	md, err := kadm.NewClient(f.directClient(t)).Metadata(ctx, f.Topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := f.proxyOf(t, md.Topics[f.Topic].Partitions[0].Leader)
	controller := f.proxyOf(t, md.Controller)

	w := dialTLS(t, f.proxies[leader])
	login(t, w, "alice", testUsers["alice"])
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	produce.Acks, produce.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = f.Topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = keyedRecordBatch([]byte("user/frank"), nil)
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	pr := w.RoundTrip(produce).(*kmsg.ProduceResponse)
	if code := produceCode(pr); code != denied {
		t.Errorf("proxy %d answered alice's Produce into the state topic (a tombstone for user/frank) with %d, want %d", leader, code, denied)
	}
	f.expectEverywhere(t, "frank, after alice produced a tombstone for him through a proxy", leader, frank, time.Now(), true)

	w = dialTLS(t, f.proxies[leader])
	login(t, w, "alice", testUsers["alice"])
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.SetVersion(2)
	dr.TimeoutMillis = 5000
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = f.Topic
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = -1 // up to the high watermark
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	drr := w.RoundTrip(dr).(*kmsg.DeleteRecordsResponse)
	if code := int16(-1); len(drr.Topics) != 1 || len(drr.Topics[0].Partitions) != 1 || drr.Topics[0].Partitions[0].ErrorCode != denied {
		if len(drr.Topics) == 1 && len(drr.Topics[0].Partitions) == 1 {
			code = drr.Topics[0].Partitions[0].ErrorCode
		}
		t.Errorf("proxy %d answered alice's DeleteRecords on the state topic with %d, want %d", leader, code, denied)
	}

	w = dialTLS(t, f.proxies[controller])
	login(t, w, "alice", testUsers["alice"])
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	alter.SetVersion(1)
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, f.Topic
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value, cfg.Op = "retention.ms", kmsg.StringPtr("1"), kmsg.IncrementalAlterConfigOpSet
	res.Configs = append(res.Configs, cfg)
	alter.Resources = append(alter.Resources, res)
	ar := w.RoundTrip(alter).(*kmsg.IncrementalAlterConfigsResponse)
	if len(ar.Resources) != 1 || ar.Resources[0].ErrorCode != denied {
		t.Errorf("proxy %d answered alice's IncrementalAlterConfigs of the state topic with %+v, want error %d", controller, ar.Resources, denied)
	}

	w = dialTLS(t, f.proxies[controller])
	login(t, w, "alice", testUsers["alice"])
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(4)
	del.TimeoutMillis = 5000
	del.TopicNames = []string{f.Topic}
	dt := w.RoundTrip(del).(*kmsg.DeleteTopicsResponse)
	if len(dt.Topics) != 1 || dt.Topics[0].ErrorCode != denied {
		t.Errorf("proxy %d answered alice's DeleteTopics of the state topic with %+v, want error %d", controller, dt.Topics, denied)
	}
	start, err := kadm.NewClient(f.directClient(t)).ListStartOffsets(ctx, f.Topic)
	if err != nil || start.Error() != nil {
		t.Fatalf("the state topic after alice's attempts: %v %v", err, start.Error())
	}
	if o, _ := start.Lookup(f.Topic, 0); o.Offset != 0 {
		t.Errorf("the state topic starts at offset %d after alice's attempts, want 0", o.Offset)
	}
}

// produceCode is the error of a one-partition Produce answer, -1 when the
// answer is not one partition's.
func produceCode(r *kmsg.ProduceResponse) int16 {
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return -1
	}
	return r.Topics[0].Partitions[0].ErrorCode
}

// proxyOf is the index of the proxy in front of broker node.
func (f *stateFleet) proxyOf(t *testing.T, node int32) int {
	t.Helper()
	for i, id := range f.nodeIDs {
		if id == node {
			return i
		}
	}
	t.Fatalf("no proxy in front of node %d", node)
	return -1
}

// keyedRecordBatch is a v2 record batch of one record with key and value
// (nil: a tombstone), no producer id, no compression.
func keyedRecordBatch(key, value []byte) []byte {
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, int64(len(key)))
	rec = append(rec, key...)
	if value == nil {
		rec = binary.AppendVarint(rec, -1)
	} else {
		rec = binary.AppendVarint(rec, int64(len(value)))
		rec = append(rec, value...)
	}
	rec = binary.AppendVarint(rec, 0) // headers
	record := append(binary.AppendVarint(nil, int64(len(rec))), rec...)
	now := uint64(time.Now().UnixMilli())
	var body []byte
	body = binary.BigEndian.AppendUint16(body, 0)          // attributes
	body = binary.BigEndian.AppendUint32(body, 0)          // last offset delta
	body = binary.BigEndian.AppendUint64(body, now)        // first timestamp
	body = binary.BigEndian.AppendUint64(body, now)        // max timestamp
	body = binary.BigEndian.AppendUint64(body, ^uint64(0)) // producer id -1
	body = binary.BigEndian.AppendUint16(body, ^uint16(0)) // producer epoch -1
	body = binary.BigEndian.AppendUint32(body, ^uint32(0)) // base sequence -1
	body = binary.BigEndian.AppendUint32(body, 1)          // records
	body = append(body, record...)
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+4+len(body))) // batch length
	b = binary.BigEndian.AppendUint32(b, 0)                       // partition leader epoch
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, body...)
}
