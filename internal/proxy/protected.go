package proxy

// The protected-topics stage keeps clients off the topics the proxy keeps
// for itself (the shared state topic, state.backend kafka). A client acts
// at the brokers with the proxy's identity (or a mapped one), so the
// brokers' ACLs cannot tell it from the proxy: without this stage it could
// write tombstones or replay old records into the state topic, delete its
// records, or change its settings.

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// ProtectedTopics names the topics no client may write or administer
// through the proxy, by name and by topic id (the id of a topic not known
// yet is all zeros and protects nothing).
type ProtectedTopics struct {
	Names []string
	IDs   [][16]byte
}

func (p *ProtectedTopics) name(n string) bool {
	for _, x := range p.Names {
		if x == n {
			return true
		}
	}
	return false
}

func (p *ProtectedTopics) id(id [16]byte) bool {
	if id == [16]byte{} {
		return false
	}
	for _, x := range p.IDs {
		if bytes.Equal(x[:], id[:]) {
			return true
		}
	}
	return false
}

// protectedKeys are the requests that read, write or administer a topic
// named in them. Reads are refused too: the records are sealed, but their
// keys name users and tokens, and Metadata already keeps the topic from
// clients.
var protectedKeys = map[int16]bool{
	0:  true, // Produce
	1:  true, // Fetch
	2:  true, // ListOffsets
	20: true, // DeleteTopics
	21: true, // DeleteRecords
	33: true, // AlterConfigs
	37: true, // CreatePartitions
	44: true, // IncrementalAlterConfigs
	45: true, // AlterPartitionReassignments
}

// protectedTopics refuses, whole, a request of protectedKeys that names a
// protected topic: every topic, partition or resource in the answer gets
// TOPIC_AUTHORIZATION_FAILED, as a broker answers for a topic the client
// may not write or alter. With protected topics set, such requests are
// read whole (not streamed) to be checked.
type protectedTopics struct{}

func (protectedTopics) serve(s *session, r *request) (bool, closeReason) {
	p := s.srv.opts.Protected
	if p == nil || !protectedKeys[r.key] {
		return true, ""
	}
	frame, reason := r.whole(s)
	if reason != "" {
		return false, reason
	}
	// Forward the frame now held whole: the size prefix and the frame as
	// one head, nothing left to stream.
	chunk := make([]byte, 0, 4+len(frame))
	chunk = protocol.AppendSize(chunk, len(frame))
	chunk = append(chunk, frame...)
	r.chunk, r.head, r.body = chunk, chunk[4:], bytes.NewReader(nil)

	h, err := protocol.ParseRequestHeader(frame)
	if err != nil {
		return true, "" // the forward stage refuses what it cannot read
	}
	req := kmsg.RequestForKey(h.Key)
	req.SetVersion(h.Version)
	if err := req.ReadFrom(frame[h.Len:]); err != nil {
		return true, "" // the broker answers a malformed request
	}
	resp, hit := refuseProtected(req, p)
	if !hit {
		return true, ""
	}
	s.srv.opts.Metrics.LocalRequest(h.Key, "protected_topic")
	s.log.Info("request names a topic the proxy keeps for itself; refused", zap.Bool("audit", true),
		zap.String("api", kmsg.NameForKey(h.Key)))
	if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
		return false, "" // acks=0: Kafka sends no response at all
	}
	s.push(pending{local: protocol.AppendResponse(nil, h, resp)})
	return false, ""
}

// refuseProtected returns the refusal of req when it names a protected
// topic.
func refuseProtected(req kmsg.Request, p *ProtectedTopics) (kmsg.Response, bool) {
	denied := kerr.TopicAuthorizationFailed.Code
	hit := false
	mark := func(b bool) {
		if b {
			hit = true
		}
	}
	switch q := req.(type) {
	case *kmsg.ProduceRequest:
		resp := kmsg.NewPtrProduceResponse()
		for _, t := range q.Topics {
			mark(p.name(t.Topic) || p.id(t.TopicID))
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, pt := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = pt.Partition, denied
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	case *kmsg.FetchRequest:
		// Refused whole, outside any fetch session (session id 0): a
		// client that uses sessions starts a new one.
		resp := kmsg.NewPtrFetchResponse()
		for _, t := range q.Topics {
			mark(p.name(t.Topic) || p.id(t.TopicID))
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, pt := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = pt.Partition, denied
				rp.HighWatermark, rp.LastStableOffset = -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	case *kmsg.ListOffsetsRequest:
		resp := kmsg.NewPtrListOffsetsResponse()
		for _, t := range q.Topics {
			mark(p.name(t.Topic))
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, pt := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = pt.Partition, denied
				rp.Timestamp, rp.Offset = -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	case *kmsg.DeleteTopicsRequest:
		resp := kmsg.NewPtrDeleteTopicsResponse()
		for _, n := range q.TopicNames {
			mark(p.name(n))
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(n), denied
			resp.Topics = append(resp.Topics, rt)
		}
		for _, t := range q.Topics {
			mark((t.Topic != nil && p.name(*t.Topic)) || p.id(t.TopicID))
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, denied
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	case *kmsg.DeleteRecordsRequest:
		resp := kmsg.NewPtrDeleteRecordsResponse()
		for _, t := range q.Topics {
			mark(p.name(t.Topic))
			rt := kmsg.NewDeleteRecordsResponseTopic()
			rt.Topic = t.Topic
			for _, pt := range t.Partitions {
				rp := kmsg.NewDeleteRecordsResponseTopicPartition()
				rp.Partition, rp.LowWatermark, rp.ErrorCode = pt.Partition, -1, denied
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	case *kmsg.AlterConfigsRequest:
		resp := kmsg.NewPtrAlterConfigsResponse()
		for _, rs := range q.Resources {
			mark(rs.ResourceType == kmsg.ConfigResourceTypeTopic && p.name(rs.ResourceName))
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rs.ResourceType, rs.ResourceName, denied
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, hit
	case *kmsg.IncrementalAlterConfigsRequest:
		resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
		for _, rs := range q.Resources {
			mark(rs.ResourceType == kmsg.ConfigResourceTypeTopic && p.name(rs.ResourceName))
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rs.ResourceType, rs.ResourceName, denied
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, hit
	case *kmsg.CreatePartitionsRequest:
		resp := kmsg.NewPtrCreatePartitionsResponse()
		for _, t := range q.Topics {
			mark(p.name(t.Topic))
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, denied
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	case *kmsg.AlterPartitionAssignmentsRequest:
		resp := kmsg.NewPtrAlterPartitionAssignmentsResponse()
		for _, t := range q.Topics {
			mark(p.name(t.Topic))
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, pt := range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = pt.Partition, denied
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, hit
	}
	return nil, false
}
