package proxy

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
)

// refusals counts ConnectionRefused by reason.
type refusals struct {
	nopMetrics
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) ConnectionRefused(_, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

func (r *refusals) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// open dials and makes one ApiVersions round trip, so the connection is
// known to be accepted and counted.
func openConn(e *env) *wire {
	w := e.dial()
	w.RoundTrip(kmsg.NewPtrApiVersionsRequest())
	return w
}

func TestMaxConnectionsPerIP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     int
		overrides map[netip.Addr]int
		want      int // connections from 127.0.0.1 that stay open
	}{
		{"limit", 2, nil, 2},
		{"override lowers it", 5, map[netip.Addr]int{netip.MustParseAddr("127.0.0.1"): 1}, 1},
		{"override raises it", 1, map[netip.Addr]int{netip.MustParseAddr("127.0.0.1"): 3}, 3},
		{"override of another address", 2, map[netip.Addr]int{netip.MustParseAddr("10.0.0.1"): 0}, 2},
		{"override 0 refuses the address", 0, map[netip.Addr]int{netip.MustParseAddr("127.0.0.1"): 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &refusals{}
			e := newEnv(t, func(o *Options) {
				o.MaxConnectionsPerIP = tc.limit
				o.ConnectionsPerIPOverrides = tc.overrides
				o.Metrics = m
			})
			var open []*wire
			for range tc.want {
				open = append(open, openConn(e))
			}
			// One more is closed at once, with nothing written.
			w := e.dial()
			if b, _ := w.ExpectClosed(); len(b) != 0 {
				t.Fatalf("wrote %x", b)
			}
			if n := m.count("max_connections_per_ip"); n != 1 {
				t.Fatalf("%d refusals counted, want 1", n)
			}
			if tc.want == 0 {
				return
			}
			// The open ones still work; closing one frees its place.
			for _, w := range open {
				w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
			}
			_ = open[0].Conn().Close()
			for i := 0; ; i++ { // the server sees the close asynchronously
				w := e.dial()
				w.Send(kmsg.NewPtrApiVersionsRequest())
				if _, err := w.ReadFrame(); err == nil {
					break
				}
				if i == 100 {
					t.Fatal("a closed connection's place was never freed")
				}
			}
		})
	}
}
