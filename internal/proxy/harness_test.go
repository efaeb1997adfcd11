package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
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

// env is a proxy in front of a one-broker kfake cluster, on loopback.
type env struct {
	t        *testing.T
	cluster  *kfake.Cluster
	srv      *Server
	addr     string
	upstream string
	cancel   context.CancelFunc
}

func newEnv(t *testing.T, mod func(*Options)) *env {
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

// wire is a hand-driven Kafka client connection.
type wire struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

func (e *env) dial() *wire {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &wire{t: e.t, conn: c}
}

func (w *wire) send(req kmsg.Request) int32 {
	w.t.Helper()
	w.corr++
	var f kmsg.RequestFormatter
	if _, err := w.conn.Write(f.AppendRequest(nil, req, w.corr)); err != nil {
		w.t.Fatal(err)
	}
	return w.corr
}

func (w *wire) sendRaw(b []byte) {
	w.t.Helper()
	if _, err := w.conn.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// readFrame returns the next frame's bytes (after the size), or an error.
func (w *wire) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(w.conn, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(w.conn, b)
	return b, err
}

// recv reads the response to req sent with corr, decoding it at version.
func (w *wire) recv(req kmsg.Request, corr int32) kmsg.Response {
	w.t.Helper()
	b, err := w.readFrame()
	if err != nil {
		w.t.Fatalf("read response to %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		w.t.Fatalf("correlation %d, want %d", got, corr)
	}
	hl, err := protocol.ResponseHeaderLen(b, req.Key(), req.GetVersion())
	if err != nil {
		w.t.Fatal(err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(b[hl:]); err != nil {
		w.t.Fatalf("decode %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func (w *wire) roundTrip(req kmsg.Request) kmsg.Response {
	w.t.Helper()
	return w.recv(req, w.send(req))
}

// expectClosed asserts the proxy closes the connection and reports what it
// wrote first and how long it took.
func (w *wire) expectClosed() (written []byte, after time.Duration) {
	w.t.Helper()
	start := time.Now()
	_ = w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(w.conn)
	if err != nil && !isClosedConnErr(err) {
		w.t.Fatalf("expected close, got %v", err)
	}
	return b, time.Since(start)
}

func handshake(v int16, mech string) *kmsg.SASLHandshakeRequest {
	r := kmsg.NewPtrSASLHandshakeRequest()
	r.SetVersion(v)
	r.Mechanism = mech
	return r
}

func authenticate(v int16, b []byte) *kmsg.SASLAuthenticateRequest {
	r := kmsg.NewPtrSASLAuthenticateRequest()
	r.SetVersion(v)
	r.SASLAuthBytes = b
	return r
}

// scramClient returns a SCRAM client conversation for user/password.
func scramClient(t *testing.T, m sasl.Mechanism, user, password string) *scram.ClientConversation {
	gen := scram.SHA512
	if m == sasl.ScramSHA256 {
		gen = scram.SHA256
	}
	c, err := gen.NewClientUnprepped(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	return c.NewConversation()
}

// login runs handshake v1 plus SaslAuthenticate at authVersion and returns
// the final response.
func (w *wire) login(m sasl.Mechanism, user, password string, authVersion int16) *kmsg.SASLAuthenticateResponse {
	w.t.Helper()
	hs := w.roundTrip(handshake(1, string(m))).(*kmsg.SASLHandshakeResponse)
	if hs.ErrorCode != 0 {
		w.t.Fatalf("handshake error %d", hs.ErrorCode)
	}
	conv := scramClient(w.t, m, user, password)
	first, _ := conv.Step("")
	r1 := w.roundTrip(authenticate(authVersion, []byte(first))).(*kmsg.SASLAuthenticateResponse)
	if r1.ErrorCode != 0 {
		return r1
	}
	final, err := conv.Step(string(r1.SASLAuthBytes))
	if err != nil {
		w.t.Fatal(err)
	}
	r2 := w.roundTrip(authenticate(authVersion, []byte(final))).(*kmsg.SASLAuthenticateResponse)
	if r2.ErrorCode == 0 {
		if _, err := conv.Step(string(r2.SASLAuthBytes)); err != nil {
			w.t.Fatalf("server signature: %v", err)
		}
	}
	return r2
}

func mustContain(t *testing.T, haystack []byte, needle string) {
	t.Helper()
	if !bytes.Contains(haystack, []byte(needle)) {
		t.Fatalf("missing %q in %q", needle, haystack)
	}
}
