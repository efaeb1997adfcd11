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
	src    *kmsg.ApiVersionsResponse // the source answer it was built from
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
	t := &versionTable{src: up, resp: &resp}
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

// versionCache turns the source's answer into the advertised table. The
// source (the upstream probe) is the single source of truth and refreshes
// itself; the table is rebuilt only when the source's answer changes.
type versionCache struct {
	source VersionSource
	reg    rewrite.Registry
	own    []rewrite.Range
	cur    atomic.Pointer[versionTable]
}

// get returns the current table, asking the source (which answers from its
// cache) and rebuilding when its answer changed. A failing source keeps the
// last table.
func (c *versionCache) get(ctx context.Context) (*versionTable, error) {
	cur := c.cur.Load()
	up, err := c.source.UpstreamVersions(ctx)
	switch {
	case err != nil && cur != nil:
		return cur, nil
	case err != nil:
		return nil, err
	case cur != nil && cur.src == up:
		return cur, nil
	}
	t := buildVersionTable(up, c.reg, c.own)
	c.cur.Store(t)
	return t, nil
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
