package proxy

import (
	"context"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
)

// VersionSource supplies the upstream broker's ApiVersions response, as the
// proxy's own probe connection last saw it. Implementations must be safe for
// concurrent use and should cache; the proxy calls it only when it has no
// table yet.
type VersionSource interface {
	UpstreamVersions(ctx context.Context) (*kmsg.ApiVersionsResponse, error)
}

// versionTable is what the proxy advertises, before and after authentication
// alike: the upstream's ranges clamped by the rewrite registry, plus the
// APIs the proxy answers itself. Immutable once built.
type versionTable struct {
	resp   *kmsg.ApiVersionsResponse // upstream response with clamped ApiKeys
	ranges [128]struct {
		ok       bool
		min, max int16
	}
}

func buildVersionTable(up *kmsg.ApiVersionsResponse, reg rewrite.Registry, own []rewrite.Range) *versionTable {
	resp := *up // shallow copy: ApiKeys is replaced, the rest is read-only
	resp.ErrorCode = 0
	resp.ThrottleMillis = 0
	resp.ApiKeys = reg.ClampKeys(up.ApiKeys, own)
	t := &versionTable{resp: &resp}
	for _, k := range resp.ApiKeys {
		if k.ApiKey >= 0 && int(k.ApiKey) < len(t.ranges) {
			r := &t.ranges[k.ApiKey]
			r.ok, r.min, r.max = true, k.MinVersion, k.MaxVersion
		}
	}
	return t
}

// allowed reports whether the proxy advertises (key, version). Requests
// outside the advertised set are refused: forwarding them could let an
// endpoint-bearing response version through unrewritten.
func (t *versionTable) allowed(key, version int16) bool {
	if key < 0 || int(key) >= len(t.ranges) {
		return false
	}
	r := t.ranges[key]
	return r.ok && version >= r.min && version <= r.max
}

func (t *versionTable) rangeOf(key int16) (lo, hi int16, ok bool) {
	if key < 0 || int(key) >= len(t.ranges) {
		return 0, 0, false
	}
	r := t.ranges[key]
	return r.min, r.max, r.ok
}

// versionCache holds the current table; it is refreshed from the source and
// from every ApiVersions response relayed after authentication.
type versionCache struct {
	source VersionSource
	reg    rewrite.Registry
	own    []rewrite.Range
	cur    atomic.Pointer[versionTable]
}

func (c *versionCache) get(ctx context.Context) (*versionTable, error) {
	if t := c.cur.Load(); t != nil {
		return t, nil
	}
	up, err := c.source.UpstreamVersions(ctx)
	if err != nil {
		return nil, err
	}
	return c.update(up), nil
}

// refresh replaces the table from an ApiVersions response relayed after
// authentication, unless the cached one came from a newer request version
// (which carries more of the upstream's fields, such as features).
func (c *versionCache) refresh(up *kmsg.ApiVersionsResponse) *versionTable {
	if cur := c.cur.Load(); cur != nil && cur.resp.Version > up.Version {
		t := buildVersionTable(up, c.reg, c.own)
		return t
	}
	return c.update(up)
}

func (c *versionCache) update(up *kmsg.ApiVersionsResponse) *versionTable {
	t := buildVersionTable(up, c.reg, c.own)
	c.cur.Store(t)
	return t
}

// ownRanges are the APIs the proxy itself implements on every connection.
// SaslHandshake stops at v1 (KAFKA-9577: v2 must never be advertised) and
// starts at v0 (librdkafka < 2.11.1 needs v0 in range to use SASL at all).
func ownRanges(extra []rewrite.Range) []rewrite.Range {
	r := []rewrite.Range{
		{Key: protocol.KeySASLHandshake, Min: 0, Max: 1},
		{Key: protocol.KeySASLAuthenticate, Min: 0, Max: 2},
	}
	return append(r, extra...)
}
