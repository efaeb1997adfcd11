package rewrite

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// Range is an inclusive version range for one API key.
type Range struct {
	Key, Min, Max int16
}

// ClampKeys turns the upstream's advertised APIs into what the proxy
// advertises: only APIs that clients and admin tools send
// (protocol.AudienceOf, an explicit allow-list: never the brokers' and
// controllers' own APIs, whatever the upstream advertises), each capped at
// min(upstream max, kmsg max, allow-list cap, registry cap); keys the
// registry drops or kmsg does not know removed; and the proxy's own APIs
// (own) replacing whatever the upstream said for those keys. The result is
// sorted by key and shares nothing with its inputs.
func (r Registry) ClampKeys(upstream []kmsg.ApiVersionsResponseApiKey, own []Range) []kmsg.ApiVersionsResponseApiKey {
	owned := make(map[int16]Range, len(own))
	for _, o := range own {
		owned[o.Key] = o
	}
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(upstream)+len(own))
	for _, k := range upstream {
		if _, ok := owned[k.ApiKey]; ok {
			continue
		}
		req := kmsg.RequestForKey(k.ApiKey)
		if req == nil {
			continue // a key we cannot frame cannot be relayed safely
		}
		clientMax, forClients := protocol.ClientMaxVersion(k.ApiKey)
		if !forClients {
			continue
		}
		hi := min(k.MaxVersion, req.MaxVersion())
		if clientMax >= 0 {
			hi = min(hi, clientMax)
		}
		if h, ok := r[k.ApiKey]; ok && (h.Clamp || h.Scan != nil) {
			hi = min(hi, h.MaxVersion)
		}
		if hi < k.MinVersion {
			continue
		}
		e := kmsg.NewApiVersionsResponseApiKey()
		e.ApiKey, e.MinVersion, e.MaxVersion = k.ApiKey, k.MinVersion, hi
		out = append(out, e)
	}
	for _, o := range own {
		e := kmsg.NewApiVersionsResponseApiKey()
		e.ApiKey, e.MinVersion, e.MaxVersion = o.Key, o.Min, o.Max
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}
