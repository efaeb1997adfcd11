package rewrite

import (
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddrMap tells what a client must see for an upstream broker, and what the
// upstream calls itself. Implementations must be safe for concurrent use.
type AddrMap interface {
	// Advertise maps one broker endpoint. An error means the node must not
	// be shown at all: rewriting fails rather than leak the upstream
	// address.
	Advertise(nodeID int32, host string, port int32) (string, int32, error)
	// UpstreamHosts lists the host names and addresses the upstream
	// brokers and bootstrap servers are known by: text naming any of them
	// is withheld from clients (NamesUpstream). The caller does not
	// modify the result.
	UpstreamHosts() []string
}

// Handling is how the proxy deals with one API whose response may carry
// upstream detail: a host or port field, broker configurations, or text a
// broker composed.
type Handling struct {
	// Rewrite, when set, rewrites the decoded response in place for every
	// version from FromVersion up to kmsg's maximum, reporting whether it
	// changed anything.
	Rewrite func(resp kmsg.Response, m AddrMap) (bool, error)
	// FromVersion is the first version to decode. Node endpoints travel in
	// tagged fields, which any flexible version may carry (an upstream may
	// send KIP-951's tag before the version that defines it), so APIs
	// whose endpoints are tags are decoded from their first flexible one.
	FromVersion int16
	// MaxVersion caps the advertised version range when Clamp is set:
	// versions above it carry endpoints. -1 drops the API entirely.
	MaxVersion int16
	Clamp      bool
	// Exempt explains why a host/port field is not a broker address; such
	// APIs pass through untouched.
	Exempt string
	// Scan, when set, is the check for responses too large to hold whole
	// (the caller's threshold): they stream through it instead of being
	// rewritten, and it fails before forwarding an endpoint (ScanFetch).
	// With Scan set, MaxVersion caps the advertised range as well: above
	// it endpoints are routine and must be rewritten, not refused.
	Scan func(src Source, version int16) error
	// Text, from version TextFrom, decodes the response to withhold the
	// text a broker composed when it names the upstream (error messages,
	// status details) and every client host (scrubText). Every response
	// type with such a field has it (a reflection test enforces it).
	Text     bool
	TextFrom int16
	text     *textPlan // planText of the response type, when Text
	// Hide, when set (WithHiddenTopics), leaves topics the client must not
	// see out of the decoded response, every version, reporting whether it
	// changed anything.
	Hide func(resp kmsg.Response, req Request) bool
}

// Request is what a response's rewrite may need to know of its request.
type Request struct {
	// NamesTopics: the request named its topics (protocol.NamesTopics)
	// rather than asking for all of them.
	NamesTopics bool
}

// Registry maps API keys to their handling. Every kmsg response type with a
// Host or Port field must appear here (a reflection test enforces it).
// The map is built once and never modified.
type Registry map[int16]Handling

// Default returns the proxy's handling: every response that names brokers
// (Metadata, FindCoordinator, DescribeCluster, Produce, ShareFetch,
// ShareAcknowledge) rewritten per node; Fetch capped below its node
// endpoints (v15) and streamed under ScanFetch; DescribeQuorum clamped;
// controller-only APIs dropped; broker configurations that name listeners
// or addresses withheld (DescribeConfigs); and in every response with
// broker-composed text or client hosts, those withheld when they could name
// the upstream (see docs/upstream-detail.md).
func Default() Registry {
	r := endpoints()
	// DescribeConfigs: broker configurations name listeners, addresses
	// and controllers (listeners, advertised.listeners, ...).
	r[32] = Handling{Rewrite: describeConfigs}
	for _, k := range textKeys() {
		h := r[k]
		h.Text, h.text = true, planText(reflect.TypeOf(kmsg.ResponseForKey(k)))
		if k == 0 {
			h.TextFrom = 8 // Produce's ErrorMessage (v8+); below, nothing to decode
		}
		r[k] = h
	}
	return r
}

// textKeys lists the APIs whose responses carry broker-composed text
// (ErrorMessage, AcknowledgeErrorMessage, StatusDetail) or client hosts
// (ClientHost); TestEveryTextResponseIsScrubbed checks the list against
// kmsg.
func textKeys() []int16 {
	return []int16{0, 10, 15, 19, 20, 29, 30, 31, 32, 33, 36, 37, 42, 43, 44, 45, 46, 48, 49, 50, 51, 55, 57,
		60, 61, 64, 68, 69, 70, 76, 77, 78, 79, 80, 81, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94}
}

// endpoints is the handling of responses that carry broker endpoints.
func endpoints() Registry {
	drop := Handling{MaxVersion: -1, Clamp: true}
	return Registry{
		// Produce: the KIP-951 NodeEndpoints tag (defined from v10),
		// decoded from the first flexible version (9). Only responses that
		// carry endpoints are re-encoded.
		0: {Rewrite: produce, FromVersion: 9},
		// Fetch: up to v15, before KIP-951 added NodeEndpoints (v16), so
		// large responses (megabytes of records) stream under ScanFetch,
		// which refuses an endpoint tag sent early; small ones, where an
		// early tag would sit (errors, no records), are rewritten whole.
		// WithFetchEndpoints trades streaming for v16+.
		1:  {Rewrite: fetch, Scan: ScanFetch, FromVersion: 12, MaxVersion: 15},
		3:  {Rewrite: metadata},
		10: {Rewrite: findCoordinator},
		60: {Rewrite: describeCluster},
		55: {MaxVersion: 1, Clamp: true}, // DescribeQuorum v2 lists controller listeners
		78: {Rewrite: shareFetch},
		79: {Rewrite: shareAcknowledge},
		// KRaft controller-to-controller APIs: never meaningful to a client
		// (and never offered anyway: protocol.AudienceOf has them as
		// Brokers); listed because their responses carry endpoints.
		52: drop, 53: drop, 54: drop, 59: drop, 82: drop,
		29: {Exempt: "ACL host is a client host pattern, not a broker"},
		31: {Exempt: "ACL host is a client host pattern, not a broker"},
		88: {Exempt: "Streams user endpoints are application servers, not brokers"},
		89: {Exempt: "Streams user endpoints are application servers, not brokers"},
	}
}

// WithFetchEndpoints returns a copy of r advertising Fetch v16+ and
// holding each Fetch response whole to rewrite its KIP-951 node endpoints
// (decoded from v12, the first flexible version): clients learn a moved
// leader's address without a metadata round trip, at the price of
// store-and-forward for every Fetch response.
func (r Registry) WithFetchEndpoints() Registry {
	out := make(Registry, len(r))
	for k, h := range r {
		out[k] = h
	}
	out[1] = Handling{Rewrite: fetch, FromVersion: 12}
	return out
}

// NeedsRewrite reports whether responses to (key, version) must be decoded.
func (r Registry) NeedsRewrite(key, version int16) bool {
	h, ok := r[key]
	return ok && (h.Rewrite != nil && version >= h.FromVersion || h.Text && version >= h.TextFrom || h.Hide != nil)
}

// Scanner returns the check that large responses to (key, version) stream
// through instead of being rewritten whole, or nil.
func (r Registry) Scanner(key, version int16) func(Source, int16) error {
	if h, ok := r[key]; ok && h.Scan != nil && version >= h.FromVersion {
		return h.Scan
	}
	return nil
}

// Response decodes body (a response body, after its header) as (key,
// version) and rewrites its endpoints. When nothing needed rewriting it
// returns changed false and the caller sends body as it was; otherwise the
// re-encoded body is appended to dst. Unknown tagged fields survive the
// round trip (kmsg keeps them). body must stay unmodified until the result
// is written: decoding aliases it.
func (r Registry) Response(dst []byte, key, version int16, body []byte, m AddrMap) (out []byte, changed bool, err error) {
	return r.ResponseTo(dst, key, version, body, m, Request{})
}

// ResponseTo is Response for a response whose request req describes.
func (r Registry) ResponseTo(dst []byte, key, version int16, body []byte, m AddrMap, req Request) (out []byte, changed bool, err error) {
	h := r[key]
	endpoints := h.Rewrite != nil && version >= h.FromVersion
	text := h.Text && version >= h.TextFrom
	if !endpoints && !text && h.Hide == nil {
		return dst, false, nil
	}
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	if err := resp.(kmsg.UnsafeReadFrom).UnsafeReadFrom(body); err != nil {
		return dst, false, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(key), version, err)
	}
	if h.Hide != nil && h.Hide(resp, req) {
		changed = true
	}
	if endpoints {
		var rewrote bool
		if rewrote, err = h.Rewrite(resp, m); err != nil {
			return dst, false, fmt.Errorf("rewrite %s v%d response: %w", kmsg.NameForKey(key), version, err)
		}
		changed = changed || rewrote
	}
	if text && scrubText(resp, h.text, m) {
		changed = true
	}
	if !changed {
		return dst, false, nil
	}
	return resp.AppendTo(dst), true, nil
}

// advertise replaces one endpoint in place with what the client must see.
func advertise(m AddrMap, node int32, host *string, port *int32) error {
	h, p, err := m.Advertise(node, *host, *port)
	if err != nil {
		return err
	}
	*host, *port = h, p
	return nil
}

func metadata(r kmsg.Response, m AddrMap) (bool, error) {
	resp := r.(*kmsg.MetadataResponse)
	for i := range resp.Brokers {
		b := &resp.Brokers[i]
		if err := advertise(m, b.NodeID, &b.Host, &b.Port); err != nil {
			return false, err
		}
	}
	return true, nil
}

func findCoordinator(r kmsg.Response, m AddrMap) (bool, error) {
	resp := r.(*kmsg.FindCoordinatorResponse)
	// v0-v3 carry one coordinator at the top level; on error Kafka sends
	// node -1 with an empty host, which must stay as it is.
	if resp.Version < 4 && resp.NodeID >= 0 {
		if err := advertise(m, resp.NodeID, &resp.Host, &resp.Port); err != nil {
			return false, err
		}
	}
	for i := range resp.Coordinators {
		c := &resp.Coordinators[i]
		if c.NodeID < 0 {
			continue
		}
		if err := advertise(m, c.NodeID, &c.Host, &c.Port); err != nil {
			return false, err
		}
	}
	return true, nil
}

func describeCluster(r kmsg.Response, m AddrMap) (bool, error) {
	resp := r.(*kmsg.DescribeClusterResponse)
	for i := range resp.Brokers {
		b := &resp.Brokers[i]
		if err := advertise(m, b.NodeID, &b.Host, &b.Port); err != nil {
			return false, err
		}
	}
	return true, nil
}

// nodeEndpoints rewrites a KIP-951 / KIP-932 endpoint list given its
// length and an accessor; it changes the response only when the list is
// non-empty, the rare case (a leader moved).
func nodeEndpoints(n int, at func(int) (int32, *string, *int32), m AddrMap) (bool, error) {
	for i := 0; i < n; i++ {
		node, host, port := at(i)
		if err := advertise(m, node, host, port); err != nil {
			return false, err
		}
	}
	return n > 0, nil
}

func produce(r kmsg.Response, m AddrMap) (bool, error) {
	b := r.(*kmsg.ProduceResponse).Brokers
	return nodeEndpoints(len(b), func(i int) (int32, *string, *int32) { return b[i].NodeID, &b[i].Host, &b[i].Port }, m)
}

func fetch(r kmsg.Response, m AddrMap) (bool, error) {
	b := r.(*kmsg.FetchResponse).Brokers
	return nodeEndpoints(len(b), func(i int) (int32, *string, *int32) { return b[i].NodeID, &b[i].Host, &b[i].Port }, m)
}

func shareFetch(r kmsg.Response, m AddrMap) (bool, error) {
	e := r.(*kmsg.ShareFetchResponse).NodeEndpoints
	return nodeEndpoints(len(e), func(i int) (int32, *string, *int32) { return e[i].NodeID, &e[i].Host, &e[i].Port }, m)
}

func shareAcknowledge(r kmsg.Response, m AddrMap) (bool, error) {
	e := r.(*kmsg.ShareAcknowledgeResponse).NodeEndpoints
	return nodeEndpoints(len(e), func(i int) (int32, *string, *int32) { return e[i].NodeID, &e[i].Host, &e[i].Port }, m)
}
