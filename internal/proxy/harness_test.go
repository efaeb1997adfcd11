package proxy

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// Test fixtures: one user per mechanism with a known password.
const (
	testUser     = "alice"
	testPassword = "alice-secret"
	advertised   = "proxy.test:9096"
)

type users map[string]sasl.Credential

func (u users) LookupUser(_ context.Context, m sasl.Mechanism, name string) (sasl.Credential, error) {
	c, ok := u[string(m)+"/"+name]
	if !ok {
		return sasl.Credential{}, sasl.ErrUnknownCredential
	}
	return c, nil
}

func testUsers(t testing.TB) users {
	u := users{}
	for _, m := range sasl.Mechanisms() {
		c, err := sasl.DeriveCredential(m, testPassword, []byte("fixed-test-salt-01234567"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		u[string(m)+"/"+testUser] = c
	}
	return u
}

// testUsersWithBob is testUsers plus bob (password "bob-secret"), a second
// user for the tests where the principal changes or counts are per user.
func testUsersWithBob(t testing.TB) users {
	u := testUsers(t)
	for _, m := range sasl.Mechanisms() {
		c, err := sasl.DeriveCredential(m, "bob-secret", []byte("fixed-test-salt-76543210"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		u[string(m)+"/bob"] = c
	}
	return u
}

// env is a proxy in front of a one-broker kfake cluster, on loopback.
type env struct {
	t        testing.TB
	cluster  *kfake.Cluster
	srv      *Server
	addr     string
	upstream string
	cancel   context.CancelFunc
}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.ListenFn(func(n, _ string) (net.Listener, error) { return net.Listen(n, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	up := cluster.ListenAddrs()[0]
	d, err := upstream.NewDialer([]string{up}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	am := &upstream.Routes{Mode: upstream.ModeSidecar, Template: advertised}
	o := Options{
		Auth:            sasl.NewAuthenticator(sasl.Options{Users: testUsers(t), PhantomKey: []byte("test-phantom-key")}),
		Mechanisms:      []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256},
		Upstream:        d,
		Versions:        upstream.NewVersionProbe(d, 0, nil),
		AddrMap:         am,
		FailedAuthDelay: 50 * time.Millisecond,
		AuthTimeout:     5 * time.Second,
		IdleTimeout:     10 * time.Minute,
		MaxReceiveSize:  512 << 10,
		MaxRequestSize:  100 << 20,
		MaxConnections:  10000,
		Logger:          zap.NewNop(),
	}
	if mod != nil {
		mod(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	e := &env{t: t, cluster: cluster, srv: srv, addr: ln.Addr().String(), upstream: up, cancel: cancel}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		<-done
	})
	return e
}

// wire is a hand-driven Kafka client connection (shared with test/).
type wire = protocoltest.Wire

func (e *env) dial() *wire {
	e.t.Helper()
	return protocoltest.Dial(e.t, e.addr, nil)
}

func mustContain(t *testing.T, haystack []byte, needle string) {
	t.Helper()
	if !bytes.Contains(haystack, []byte(needle)) {
		t.Fatalf("missing %q in %q", needle, haystack)
	}
}
