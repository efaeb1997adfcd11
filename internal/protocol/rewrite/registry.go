package rewrite

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddrMap tells what a client must see for an upstream broker. Implementations
// must be safe for concurrent use. An error means the node must not be shown
// at all: rewriting fails rather than leak the upstream address.
type AddrMap interface {
	Advertise(nodeID int32, host string, port int32) (string, int32, error)
}

// Handling is how the proxy deals with one API whose response schema has a
// host or port field.
type Handling struct {
	// Rewrite, when set, rewrites the decoded response in place for every
	// version up to kmsg's maximum.
	Rewrite func(resp kmsg.Response, m AddrMap) error
	// MaxVersion caps the advertised version range when Rewrite is nil:
	// versions above it carry endpoints. -1 drops the API entirely.
	MaxVersion int16
	// Exempt explains why a host/port field is not a broker address; such
	// APIs pass through untouched.
	Exempt string
}

// Registry maps API keys to their handling. Every kmsg response type with a
// Host or Port field must appear here (a reflection test enforces it).
// The map is built once and never modified.
type Registry map[int16]Handling

// Default returns the proxy's handling: every response that names brokers
// (Metadata, FindCoordinator, DescribeCluster, Produce, ShareFetch,
// ShareAcknowledge) rewritten per node; Fetch clamped below its KIP-951
// version; controller-only APIs dropped.
func Default() Registry {
	drop := Handling{MaxVersion: -1}
	return Registry{
		0: {Rewrite: produce}, // v10+ NodeEndpoints tag (KIP-951)
		// Fetch v16+ carries NodeEndpoints too, but rewriting means
		// buffering whole fetch responses (up to fetch.max.bytes, 50 MiB)
		// instead of streaming them; KIP-951 is only a shortcut past a
		// metadata refresh, so those versions are not advertised.
		1:  {MaxVersion: 15},
		3:  {Rewrite: metadata},
		10: {Rewrite: findCoordinator},
		60: {Rewrite: describeCluster},
		55: {MaxVersion: 1}, // DescribeQuorum v2 lists controller listeners
		78: {Rewrite: shareFetch},
		79: {Rewrite: shareAcknowledge},
		// KRaft controller-to-controller APIs: never meaningful to a client.
		52: drop, 53: drop, 54: drop, 59: drop, 82: drop,
		29: {Exempt: "ACL host is a client host pattern, not a broker"},
		31: {Exempt: "ACL host is a client host pattern, not a broker"},
		88: {Exempt: "Streams user endpoints are application servers, not brokers"},
		89: {Exempt: "Streams user endpoints are application servers, not brokers"},
	}
}

// NeedsRewrite reports whether responses to (key, version) must be decoded
// and rewritten. Produce responses carry endpoints only from v10.
func (r Registry) NeedsRewrite(key, version int16) bool {
	h, ok := r[key]
	if key == 0 && version < 10 {
		return false
	}
	return ok && h.Rewrite != nil
}

// Response decodes body (a response body, after its header) as (key,
// version), rewrites its endpoints and re-encodes it, appending to dst.
// Unknown tagged fields survive the round trip (kmsg keeps them).
func (r Registry) Response(dst []byte, key, version int16, body []byte, m AddrMap) ([]byte, error) {
	h, ok := r[key]
	if !ok || h.Rewrite == nil {
		return append(dst, body...), nil
	}
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		return dst, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(key), version, err)
	}
	if err := h.Rewrite(resp, m); err != nil {
		return dst, fmt.Errorf("rewrite %s v%d response: %w", kmsg.NameForKey(key), version, err)
	}
	return resp.AppendTo(dst), nil
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

func metadata(r kmsg.Response, m AddrMap) error {
	resp := r.(*kmsg.MetadataResponse)
	for i := range resp.Brokers {
		b := &resp.Brokers[i]
		if err := advertise(m, b.NodeID, &b.Host, &b.Port); err != nil {
			return err
		}
	}
	return nil
}

func findCoordinator(r kmsg.Response, m AddrMap) error {
	resp := r.(*kmsg.FindCoordinatorResponse)
	// v0-v3 carry one coordinator at the top level; on error Kafka sends
	// node -1 with an empty host, which must stay as it is.
	if resp.Version < 4 && resp.NodeID >= 0 {
		if err := advertise(m, resp.NodeID, &resp.Host, &resp.Port); err != nil {
			return err
		}
	}
	for i := range resp.Coordinators {
		c := &resp.Coordinators[i]
		if c.NodeID < 0 {
			continue
		}
		if err := advertise(m, c.NodeID, &c.Host, &c.Port); err != nil {
			return err
		}
	}
	return nil
}

func describeCluster(r kmsg.Response, m AddrMap) error {
	resp := r.(*kmsg.DescribeClusterResponse)
	for i := range resp.Brokers {
		b := &resp.Brokers[i]
		if err := advertise(m, b.NodeID, &b.Host, &b.Port); err != nil {
			return err
		}
	}
	return nil
}

func produce(r kmsg.Response, m AddrMap) error {
	resp := r.(*kmsg.ProduceResponse)
	for i := range resp.Brokers {
		b := &resp.Brokers[i]
		if err := advertise(m, b.NodeID, &b.Host, &b.Port); err != nil {
			return err
		}
	}
	return nil
}

func shareFetch(r kmsg.Response, m AddrMap) error {
	resp := r.(*kmsg.ShareFetchResponse)
	for i := range resp.NodeEndpoints {
		n := &resp.NodeEndpoints[i]
		if err := advertise(m, n.NodeID, &n.Host, &n.Port); err != nil {
			return err
		}
	}
	return nil
}

func shareAcknowledge(r kmsg.Response, m AddrMap) error {
	resp := r.(*kmsg.ShareAcknowledgeResponse)
	for i := range resp.NodeEndpoints {
		n := &resp.NodeEndpoints[i]
		if err := advertise(m, n.NodeID, &n.Host, &n.Port); err != nil {
			return err
		}
	}
	return nil
}
