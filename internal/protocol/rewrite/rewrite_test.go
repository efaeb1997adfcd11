package rewrite

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type fixed struct{}

func (fixed) UpstreamHosts() []string { return []string{"10.1.2.3", "kafka-0.internal.example"} }

func (fixed) Advertise(id int32, _ string, _ int32) (string, int32, error) {
	if id == 99 {
		return "", 0, errors.New("unknown node")
	}
	return "proxy.example", 9096, nil
}

// hasEndpoint reports whether a response type has a Host or Port field at
// any depth: such a type can carry a broker address to the client.
func hasEndpoint(t reflect.Type, seen map[reflect.Type]bool) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return false
	}
	seen[t] = true
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name == "Host" || f.Name == "Port" || hasEndpoint(f.Type, seen) {
			return true
		}
	}
	return false
}

// TestEveryEndpointResponseIsHandled walks every kmsg response type and fails
// when one with a Host or Port field is neither rewritten, clamped, dropped
// nor exempted with a reason. A kmsg upgrade that adds such a field must be
// handled here before it can ship.
func TestEveryEndpointResponseIsHandled(t *testing.T) {
	reg := Default()
	found := 0
	for k := int16(0); k < 1000; k++ {
		resp := kmsg.ResponseForKey(k)
		if resp == nil || !hasEndpoint(reflect.TypeOf(resp), map[reflect.Type]bool{}) {
			continue
		}
		found++
		h, ok := reg[k]
		if !ok {
			t.Errorf("%s (key %d) carries Host/Port but is not in the registry", kmsg.NameForKey(k), k)
			continue
		}
		if h.Rewrite == nil && h.Exempt == "" && (!h.Clamp || h.MaxVersion >= resp.MaxVersion()) {
			t.Errorf("%s (key %d): neither rewritten, exempt, nor clamped below kmsg's max %d (clamp %v at %d)",
				kmsg.NameForKey(k), k, resp.MaxVersion(), h.Clamp, h.MaxVersion)
		}
	}
	if found < 10 {
		t.Fatalf("reflection found only %d endpoint-bearing responses; the walk is broken", found)
	}
}

func TestMetadataRewriteAllVersions(t *testing.T) {
	reg := Default()
	for v := int16(0); v <= kmsg.NewPtrMetadataResponse().MaxVersion(); v++ {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(v)
		for _, id := range []int32{0, 1, 2} {
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port = id, "10.1.2.3", 9092
			resp.Brokers = append(resp.Brokers, b)
		}
		topic := kmsg.NewMetadataResponseTopic()
		topic.Topic = kmsg.StringPtr("t")
		resp.Topics = append(resp.Topics, topic)
		body := resp.AppendTo(nil)
		out, _, err := reg.Response(nil, 3, v, body, fixed{})
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if bytes.Contains(out, []byte("10.1.2.3")) {
			t.Fatalf("v%d: upstream host survived", v)
		}
		got := kmsg.NewPtrMetadataResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(out); err != nil {
			t.Fatalf("v%d: re-read: %v", v, err)
		}
		for _, b := range got.Brokers {
			if b.Host != "proxy.example" || b.Port != 9096 {
				t.Fatalf("v%d: broker %+v", v, b)
			}
		}
		if len(got.Topics) != 1 || *got.Topics[0].Topic != "t" {
			t.Fatalf("v%d: topics lost", v)
		}
	}
}

func TestFindCoordinatorRewrite(t *testing.T) {
	reg := Default()
	for v := int16(0); v <= kmsg.NewPtrFindCoordinatorResponse().MaxVersion(); v++ {
		resp := kmsg.NewPtrFindCoordinatorResponse()
		resp.SetVersion(v)
		if v < 4 {
			resp.NodeID, resp.Host, resp.Port = 1, "10.1.2.3", 9092
		} else {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Host, c.Port = "g", 1, "10.1.2.3", 9092
			bad := kmsg.NewFindCoordinatorResponseCoordinator()
			bad.Key, bad.NodeID, bad.ErrorCode = "h", -1, 15
			resp.Coordinators = append(resp.Coordinators, c, bad)
		}
		out, _, err := reg.Response(nil, 10, v, resp.AppendTo(nil), fixed{})
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if bytes.Contains(out, []byte("10.1.2.3")) || !bytes.Contains(out, []byte("proxy.example")) {
			t.Fatalf("v%d: not rewritten: %q", v, out)
		}
	}
	// A coordinator error (node -1, empty host) passes through untouched.
	resp := kmsg.NewPtrFindCoordinatorResponse()
	resp.NodeID, resp.ErrorCode = -1, 15
	out, _, err := reg.Response(nil, 10, 0, resp.AppendTo(nil), fixed{})
	if err != nil || bytes.Contains(out, []byte("proxy.example")) {
		t.Fatalf("error response rewritten: %q %v", out, err)
	}
}

func TestDescribeClusterRewriteAndUnknownNode(t *testing.T) {
	reg := Default()
	resp := kmsg.NewPtrDescribeClusterResponse()
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = 99, "10.1.2.3", 9092
	resp.Brokers = append(resp.Brokers, b)
	if _, _, err := reg.Response(nil, 60, 0, resp.AppendTo(nil), fixed{}); err == nil {
		t.Fatal("an unmappable node must fail the rewrite, not leak")
	}
	resp.Brokers[0].NodeID = 1
	out, _, err := reg.Response(nil, 60, 0, resp.AppendTo(nil), fixed{})
	if err != nil || bytes.Contains(out, []byte("10.1.2.3")) {
		t.Fatalf("%q %v", out, err)
	}
	if _, _, err := reg.Response(nil, 60, 0, []byte{1, 2}, fixed{}); err == nil {
		t.Fatal("truncated body decoded")
	}
}

func TestClampKeys(t *testing.T) {
	reg := Default()
	up := func(k, lo, hi int16) kmsg.ApiVersionsResponseApiKey {
		e := kmsg.NewApiVersionsResponseApiKey()
		e.ApiKey, e.MinVersion, e.MaxVersion = k, lo, hi
		return e
	}
	got := reg.ClampKeys([]kmsg.ApiVersionsResponseApiKey{
		up(0, 3, 12),  // Produce: rewritten, all versions
		up(1, 4, 17),  // Fetch: streamed, capped at 15
		up(3, 0, 99),  // Metadata: capped at kmsg max
		up(17, 0, 1),  // SaslHandshake: replaced by ours
		up(78, 1, 1),  // ShareFetch: dropped
		up(999, 0, 3), // unknown to kmsg: dropped
		up(55, 2, 2),  // DescribeQuorum: only endpoint versions: dropped
		up(29, 0, 3),  // DescribeACLs: exempt, untouched
		up(18, 0, 4),  // ApiVersions
		up(36, 0, 2),  // replaced
		up(50, 0, 0),  // not owned here: passes through
	}, []Range{{17, 0, 1}, {36, 0, 2}})
	want := map[int16][2]int16{0: {3, 12}, 1: {4, 15}, 78: {1, 1}, 3: {0, kmsg.NewPtrMetadataRequest().MaxVersion()},
		17: {0, 1}, 18: {0, 4}, 29: {0, 3}, 36: {0, 2}, 50: {0, 0}}
	if len(got) != len(want) {
		t.Fatalf("got %d keys: %+v", len(got), got)
	}
	prev := int16(-1)
	for _, k := range got {
		w, ok := want[k.ApiKey]
		if !ok || k.MinVersion != w[0] || k.MaxVersion != w[1] {
			t.Errorf("key %d: %d-%d, want %v (present %v)", k.ApiKey, k.MinVersion, k.MaxVersion, w, ok)
		}
		if k.ApiKey <= prev {
			t.Error("not sorted")
		}
		prev = k.ApiKey
	}
	for _, k := range reg.WithFetchEndpoints().ClampKeys([]kmsg.ApiVersionsResponseApiKey{up(1, 4, 17)}, nil) {
		if k.ApiKey == 1 && k.MaxVersion != 17 {
			t.Errorf("WithFetchEndpoints: Fetch up to %d, want 17", k.MaxVersion)
		}
	}
}

// FuzzRewrite decodes arbitrary bodies as each rewritten response at every
// version: no panic, and a successful rewrite re-decodes.
func FuzzRewrite(f *testing.F) {
	m := kmsg.NewPtrMetadataResponse()
	b := kmsg.NewMetadataResponseBroker()
	b.Host = "h"
	m.Brokers = append(m.Brokers, b)
	f.Add(int16(3), int16(0), m.AppendTo(nil))
	f.Add(int16(10), int16(4), kmsg.NewPtrFindCoordinatorResponse().AppendTo(nil))
	f.Add(int16(60), int16(1), kmsg.NewPtrDescribeClusterResponse().AppendTo(nil))
	dc := describeConfigsFixture()
	dc.SetVersion(4)
	f.Add(int16(32), int16(4), dc.AppendTo(nil))
	reg := Default()
	keys := []int16{0, 1, 3, 10, 60, 78, 79}
	for k, h := range reg { // every key the registry decodes, after the endpoint ones
		if k != 0 && k != 1 && k != 3 && k != 10 && k != 60 && k != 78 && k != 79 && (h.Rewrite != nil || h.Text) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys[7:])
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		key = keys[int(uint16(key))%len(keys)]
		resp := kmsg.ResponseForKey(key)
		version = int16(uint16(version) % uint16(resp.MaxVersion()+1))
		out, changed, err := reg.Response(nil, key, version, body, fixed{})
		if err != nil || !changed { // unchanged: the caller forwards body itself
			return
		}
		again := kmsg.ResponseForKey(key)
		again.SetVersion(version)
		if err := again.ReadFrom(out); err != nil {
			t.Fatalf("rewritten %d v%d does not decode: %v", key, version, err)
		}
		if reg[key].Text && scrubText(again, reg[key].text, fixed{}) {
			t.Fatalf("rewritten %d v%d still has text naming the upstream", key, version)
		}
	})
}

func TestProduceAndShareRewrites(t *testing.T) {
	reg := Default()
	p := kmsg.NewPtrProduceResponse()
	p.SetVersion(12)
	b := kmsg.NewProduceResponseBroker()
	b.NodeID, b.Host, b.Port = 2, "10.1.2.3", 9092
	p.Brokers = append(p.Brokers, b)
	out, _, err := reg.Response(nil, 0, 12, p.AppendTo(nil), fixed{})
	if err != nil || bytes.Contains(out, []byte("10.1.2.3")) || !bytes.Contains(out, []byte("proxy.example")) {
		t.Fatalf("produce: %q %v", out, err)
	}
	if reg.NeedsRewrite(0, 7) || !reg.NeedsRewrite(0, 8) || !reg.NeedsRewrite(1, 12) || reg.Scanner(1, 11) != nil || reg.Scanner(1, 12) == nil || reg.Scanner(0, 12) != nil {
		t.Fatal("Produce decoded from v8 (its ErrorMessage); Fetch decoded or scanned from v12 (first flexible)")
	}
	if full := reg.WithFetchEndpoints(); full.NeedsRewrite(1, 11) || !full.NeedsRewrite(1, 12) || full.Scanner(1, 12) != nil || !reg.NeedsRewrite(0, 9) {
		t.Fatal("WithFetchEndpoints: Fetch decoded from v12, Produce unchanged")
	}
	if reg[1].Scan == nil {
		t.Fatal("WithFetchEndpoints modified the registry it was called on")
	}
	// A Produce response without endpoints is not re-encoded.
	plain := kmsg.NewPtrProduceResponse()
	plain.SetVersion(12)
	if _, changed, err := reg.Response(nil, 0, 12, plain.AppendTo(nil), fixed{}); changed || err != nil {
		t.Fatalf("unchanged produce re-encoded: %v %v", changed, err)
	}
	// The tag at a flexible version before the one defining it (v9) is
	// still found and rewritten.
	early := kmsg.NewPtrProduceResponse()
	early.SetVersion(9)
	early.Brokers = p.Brokers
	enc := early.AppendTo(nil)
	out, changed, err := reg.Response(nil, 0, 9, enc, fixed{})
	if err != nil || (bytes.Contains(enc, []byte("10.1.2.3")) && (!changed || bytes.Contains(out, []byte("10.1.2.3")))) {
		t.Fatalf("v9 produce with an early tag: changed %v err %v", changed, err)
	}
	sf := kmsg.NewPtrShareFetchResponse()
	sf.SetVersion(1)
	ne := kmsg.NewShareFetchResponseNodeEndpoint()
	ne.NodeID, ne.Host, ne.Port = 1, "10.1.2.3", 9092
	sf.NodeEndpoints = append(sf.NodeEndpoints, ne)
	out, _, err = reg.Response(nil, 78, 1, sf.AppendTo(nil), fixed{})
	if err != nil || bytes.Contains(out, []byte("10.1.2.3")) {
		t.Fatalf("share fetch: %q %v", out, err)
	}
	sa := kmsg.NewPtrShareAcknowledgeResponse()
	sa.SetVersion(1)
	ae := kmsg.NewShareAcknowledgeResponseNodeEndpoint()
	ae.NodeID, ae.Host, ae.Port = 1, "10.1.2.3", 9092
	sa.NodeEndpoints = append(sa.NodeEndpoints, ae)
	out, _, err = reg.Response(nil, 79, 1, sa.AppendTo(nil), fixed{})
	if err != nil || bytes.Contains(out, []byte("10.1.2.3")) {
		t.Fatalf("share ack: %q %v", out, err)
	}
}

// TestClampKeysOffersOnlyClientAPIs: an upstream that advertises every API
// kmsg knows (a real broker advertises several brokers-only ones) must
// still see the proxy offer only the client APIs, AddPartitionsToTxn no
// higher than its last client version.
func TestClampKeysOffersOnlyClientAPIs(t *testing.T) {
	var all []kmsg.ApiVersionsResponseApiKey
	for k := int16(0); k < 1000; k++ {
		if req := kmsg.RequestForKey(k); req != nil {
			e := kmsg.NewApiVersionsResponseApiKey()
			e.ApiKey, e.MaxVersion = k, req.MaxVersion()
			all = append(all, e)
		}
	}
	offered := map[int16]int16{}
	for _, k := range Default().ClampKeys(all, nil) {
		offered[k.ApiKey] = k.MaxVersion
	}
	brokersOnly := []int16{4, 5, 6, 7, 27, 52, 53, 54, 56, 58, 59, 62, 63, 67, 70, 73, 82, 83, 84, 85, 86, 87}
	for _, k := range brokersOnly {
		if _, ok := offered[k]; ok {
			t.Errorf("%s (key %d) offered to clients", kmsg.NameForKey(k), k)
		}
	}
	if v, ok := offered[24]; !ok || v != 3 {
		t.Errorf("AddPartitionsToTxn offered up to v%d (%v), want v3", v, ok)
	}
	for _, k := range []int16{0, 1, 3, 8, 11, 19, 22, 32, 44, 60, 68, 75} {
		if _, ok := offered[k]; !ok {
			t.Errorf("client API %s (key %d) not offered", kmsg.NameForKey(k), k)
		}
	}
}
