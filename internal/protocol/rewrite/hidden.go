package rewrite

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WithHiddenTopics returns a copy of r that keeps the named topics (the
// proxy's own state topic) from clients the way a broker keeps a topic
// from a client not allowed to describe it: left out of answers about all
// topics, and answered TOPIC_AUTHORIZATION_FAILED when named (Metadata,
// DescribeTopicPartitions); left out of DescribeLogDirs. This is tidiness,
// not access control: the brokers' ACLs are, and the records are sealed.
func (r Registry) WithHiddenTopics(topics ...string) Registry {
	if len(topics) == 0 {
		return r
	}
	hidden := map[string]bool{}
	for _, t := range topics {
		hidden[t] = true
	}
	out := make(Registry, len(r)+2)
	for k, h := range r {
		out[k] = h
	}
	hide := func(key int16, f func(kmsg.Response, Request) bool) {
		h := out[key]
		h.Hide = f
		out[key] = h
	}
	hide(3, func(r kmsg.Response, req Request) bool {
		resp := r.(*kmsg.MetadataResponse)
		changed := false
		kept := resp.Topics[:0]
		for _, t := range resp.Topics {
			if t.Topic == nil || !hidden[*t.Topic] {
				kept = append(kept, t)
				continue
			}
			changed = true
			if req.NamesTopics {
				// As MetadataResponse's entry for a topic the client may
				// not describe: the error, the name, nothing else.
				denied := kmsg.NewMetadataResponseTopic()
				denied.Topic, denied.ErrorCode = t.Topic, kerr.TopicAuthorizationFailed.Code
				kept = append(kept, denied)
			}
		}
		resp.Topics = kept
		return changed
	})
	hide(75, func(r kmsg.Response, req Request) bool {
		resp := r.(*kmsg.DescribeTopicPartitionsResponse)
		changed := false
		kept := resp.Topics[:0]
		for _, t := range resp.Topics {
			if t.Topic == nil || !hidden[*t.Topic] {
				kept = append(kept, t)
				continue
			}
			changed = true
			if req.NamesTopics {
				denied := kmsg.NewDescribeTopicPartitionsResponseTopic()
				denied.Topic, denied.ErrorCode = t.Topic, kerr.TopicAuthorizationFailed.Code
				kept = append(kept, denied)
			}
		}
		resp.Topics = kept
		return changed
	})
	hide(35, func(r kmsg.Response, _ Request) bool {
		resp := r.(*kmsg.DescribeLogDirsResponse)
		changed := false
		for i := range resp.Dirs {
			d := &resp.Dirs[i]
			kept := d.Topics[:0]
			for _, t := range d.Topics {
				if hidden[t.Topic] {
					changed = true
					continue
				}
				kept = append(kept, t)
			}
			d.Topics = kept
		}
		return changed
	})
	return out
}
