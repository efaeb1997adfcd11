package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// WithHiddenTopics returns a copy of r that leaves the named topics (the
// proxy's own state topic) out of the answers that list topics: Metadata,
// DescribeTopicPartitions and DescribeLogDirs. A client then neither sees
// nor lists them; this is tidiness, not access control (the brokers' ACLs
// are, and the state records are sealed).
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
	chain := func(key int16, drop func(kmsg.Response) bool) {
		h := out[key]
		inner := h.Rewrite
		h.Rewrite = func(resp kmsg.Response, m AddrMap) (bool, error) {
			changed := drop(resp)
			if inner == nil {
				return changed, nil
			}
			c, err := inner(resp, m)
			return changed || c, err
		}
		h.FromVersion = 0
		out[key] = h
	}
	chain(3, func(r kmsg.Response) bool {
		resp := r.(*kmsg.MetadataResponse)
		n := len(resp.Topics)
		resp.Topics = without(resp.Topics, func(t kmsg.MetadataResponseTopic) bool { return t.Topic != nil && hidden[*t.Topic] })
		return len(resp.Topics) != n
	})
	chain(75, func(r kmsg.Response) bool {
		resp := r.(*kmsg.DescribeTopicPartitionsResponse)
		n := len(resp.Topics)
		resp.Topics = without(resp.Topics, func(t kmsg.DescribeTopicPartitionsResponseTopic) bool {
			return t.Topic != nil && hidden[*t.Topic]
		})
		return len(resp.Topics) != n
	})
	chain(35, func(r kmsg.Response) bool {
		resp := r.(*kmsg.DescribeLogDirsResponse)
		changed := false
		for i := range resp.Dirs {
			d := &resp.Dirs[i]
			n := len(d.Topics)
			d.Topics = without(d.Topics, func(t kmsg.DescribeLogDirsResponseDirTopic) bool { return hidden[t.Topic] })
			changed = changed || len(d.Topics) != n
		}
		return changed
	})
	return out
}

// without drops the elements drop reports, in place.
func without[T any](s []T, drop func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if !drop(v) {
			out = append(out, v)
		}
	}
	return out
}
