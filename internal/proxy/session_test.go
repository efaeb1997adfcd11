package proxy

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

const generic512 = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"

func TestApiVersionsBeforeAuth(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	resp := w.RoundTrip(req).(*kmsg.ApiVersionsResponse)
	keys := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		keys[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if resp.ErrorCode != 0 || keys[17] != [2]int16{0, 1} || keys[36] != [2]int16{0, 2} {
		t.Fatalf("error %d, handshake %v, authenticate %v", resp.ErrorCode, keys[17], keys[36])
	}
	if keys[0][1] < 10 || keys[1][1] != 15 {
		t.Fatalf("Produce is rewritten, so its KIP-951 versions should be advertised, and Fetch streams up to v15: %v %v", keys[0], keys[1])
	}
	if _, ok := keys[52]; ok {
		t.Fatal("Vote (controller-only) advertised")
	}
	if r, ok := keys[55]; ok && r[1] > 1 {
		t.Fatalf("DescribeQuorum advertised at v%d (v2 lists controller endpoints)", r[1])
	}
	// A second ApiVersions before the handshake closes the connection.
	w.Send(req)
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %d bytes before closing", len(b))
	}
}

func TestApiVersionsUnsupportedVersionThenRetry(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(42)
	corr := w.Send(req)
	b, err := w.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	// Header v0, then a v0 body: error 35 and only ApiVersions' own range.
	want := []byte{0, 0, 0, byte(corr), 0, 35, 0, 0, 0, 1, 0, 18, 0, 0}
	if !bytes.HasPrefix(b, want) || len(b) != 16 {
		t.Fatalf("got %x, want %x + max", b, want)
	}
	// The connection stays in its state: a supported retry succeeds.
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kgo", "1.0"
	if resp := w.RoundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 || len(resp.ApiKeys) < 10 {
		t.Fatalf("retry: %+v", resp)
	}
}

func TestApiVersionsBadSoftwareName(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "-bad", "1.0"
	resp := w.RoundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 42 || len(resp.ApiKeys) != 0 {
		t.Fatalf("got error %d with %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	req.ClientSoftwareName = "good.name-1"
	if resp := w.RoundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("retry error %d", resp.ErrorCode)
	}
}

func TestValidSoftwareField(t *testing.T) {
	for v, want := range map[string]bool{"a": true, "kgo": true, "apache-kafka-java": true, "3.7.0": true,
		"": false, "-a": false, "a-": false, "a.": false, "a b": false, "é": false, "a_b": false} {
		if got := validSoftwareField(v); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}

func TestRequestBeforeAuthClosesWithoutResponse(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	w.Send(kmsg.NewPtrMetadataRequest())
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %x", b)
	}
}

func TestUnknownMechanismGets33ThenClose(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	corr := w.Send(protocoltest.Handshake(1, "PLAIN"))
	start := time.Now()
	b, _ := w.ExpectClosed()
	if time.Since(start) < 40*time.Millisecond {
		t.Fatal("answered before the failed-auth delay")
	}
	if len(b) < 8 || int32(binary.BigEndian.Uint32(b[4:])) != corr {
		t.Fatalf("no response: %x", b)
	}
	resp := kmsg.NewPtrSASLHandshakeResponse()
	if err := resp.ReadFrom(b[8:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 33 || len(resp.SupportedMechanisms) != 2 {
		t.Fatalf("%+v", resp)
	}
}

func TestLoginAndRelay(t *testing.T) {
	for _, m := range sasl.Mechanisms() {
		for _, v := range []int16{0, 1, 2} {
			t.Run(string(m)+"/v"+strconv.Itoa(int(v)), func(t *testing.T) {
				e := newEnv(t, nil)
				w := e.dial()
				r := w.Login(m, testUser, testPassword, v)
				if r.ErrorCode != 0 {
					t.Fatalf("login error %d %v", r.ErrorCode, r.ErrorMessage)
				}
				if v >= 1 && r.SessionLifetimeMillis != 0 {
					t.Fatalf("lifetime %d with no max_reauth", r.SessionLifetimeMillis)
				}
				meta := w.RoundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
				if len(meta.Brokers) != 1 || meta.Brokers[0].Host != "proxy.test" || meta.Brokers[0].Port != 9096 {
					t.Fatalf("brokers %+v", meta.Brokers)
				}
			})
		}
	}
}

// Issue 6 acceptance 4: an unknown user and a wrong password take the same
// rounds and get byte-identical answers (phantom challenge for the unknown
// user), after the same delay.
func TestWrongPasswordAndUnknownUserLookTheSame(t *testing.T) {
	e := newEnv(t, nil)
	var seen [][]byte
	var firsts []string
	for _, who := range [][2]string{{testUser, "wrong"}, {"mallory", "whatever"}} {
		w := e.dial()
		w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
		conv := protocoltest.ScramClient(t, sasl.ScramSHA512, who[0], who[1])
		first, _ := conv.Step("")
		r1 := w.RoundTrip(protocoltest.Authenticate(1, []byte(first))).(*kmsg.SASLAuthenticateResponse)
		if r1.ErrorCode != 0 {
			t.Fatalf("%s: round 1 failed with %d: the user's existence shows", who[0], r1.ErrorCode)
		}
		firsts = append(firsts, string(r1.SASLAuthBytes))
		final, err := conv.Step(string(r1.SASLAuthBytes))
		if err != nil {
			t.Fatalf("%s: the client rejected server-first: %v", who[0], err)
		}
		corr := w.Send(protocoltest.Authenticate(1, []byte(final)))
		b, after := w.ExpectClosed()
		checkGeneric58(t, b, corr, after)
		seen = append(seen, b[4:])
	}
	// Bodies are identical (correlation ids differ, so compare past them).
	if !bytes.Equal(seen[0][4:], seen[1][4:]) {
		t.Fatalf("wrong password %x vs unknown user %x", seen[0], seen[1])
	}
	shape := func(sf string) string { // r=<nonce>,s=<salt>,i=<n>: compare salt length and iterations
		parts := strings.Split(sf, ",")
		return strconv.Itoa(len(parts[1])) + parts[2]
	}
	if shape(firsts[0]) != shape(firsts[1]) {
		t.Fatalf("server-first differs in shape: %q vs %q", firsts[0], firsts[1])
	}
}

func checkGeneric58(t *testing.T, b []byte, corr int32, after time.Duration) {
	t.Helper()
	if after < 40*time.Millisecond {
		t.Errorf("failure answered after %v, before the delay", after)
	}
	if len(b) < 8 || int32(binary.BigEndian.Uint32(b[4:])) != corr {
		t.Fatalf("no response before close: %x", b)
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.SetVersion(1)
	if err := resp.ReadFrom(b[8:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 58 || resp.ErrorMessage == nil || *resp.ErrorMessage != generic512 {
		t.Fatalf("got %d %v", resp.ErrorCode, resp.ErrorMessage)
	}
	if bytes.Contains(b, []byte("e=")) {
		t.Fatal("an RFC 5802 e= message reached the client")
	}
}

func TestWrongProofLengthClosesSilently(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
	conv := protocoltest.ScramClient(t, sasl.ScramSHA512, testUser, testPassword)
	first, _ := conv.Step("")
	r1 := w.RoundTrip(protocoltest.Authenticate(1, []byte(first))).(*kmsg.SASLAuthenticateResponse)
	final, _ := conv.Step(string(r1.SASLAuthBytes))
	i := bytes.LastIndex([]byte(final), []byte(",p="))
	short := final[:i] + ",p=AAAA" // 3 bytes: not the 64-byte SHA-512 length
	w.Send(protocoltest.Authenticate(1, []byte(short)))
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %x", b)
	}
}

func TestOversizedPreAuthFrameCloses(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	frame := make([]byte, 4+600<<10)
	binary.BigEndian.PutUint32(frame, 600<<10)
	_, _ = w.Conn().Write(frame[:4])
	b, after := w.ExpectClosed()
	if len(b) != 0 || after < 40*time.Millisecond {
		t.Fatalf("wrote %d bytes after %v", len(b), after)
	}
}

func TestWrongRequestDuringAuthenticateGets34(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
	corr := w.Send(kmsg.NewPtrMetadataRequest())
	b, _ := w.ExpectClosed()
	if len(b) < 8 || int32(binary.BigEndian.Uint32(b[4:])) != corr {
		t.Fatalf("no response: %x", b)
	}
	resp := kmsg.NewPtrMetadataResponse()
	if err := resp.ReadFrom(b[8:]); err != nil {
		t.Fatal(err)
	}
	// Metadata has no top-level error code: the empty response is sent.
	av := kmsg.NewPtrApiVersionsRequest()
	w2 := e.dial()
	w2.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
	corr = w2.Send(av)
	b, _ = w2.ExpectClosed()
	r := kmsg.NewPtrApiVersionsResponse()
	if err := r.ReadFrom(b[8:]); err != nil || r.ErrorCode != 34 {
		t.Fatalf("ApiVersions during authenticate: %v %d", err, r.ErrorCode)
	}
}

// rawToken writes a v0-path SASL token: a size prefix and the bytes.
func rawToken(w *wire, b []byte) {
	w.SendRaw(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	w.SendRaw(b)
}

// v0Start dials, sends SaslHandshake v0 and then the raw client-first and,
// after the server-first, client-final tokens of a SCRAM-SHA-512 login as
// user with password. The server-final (or the close) is left to read.
func v0Start(t *testing.T, e *env, user, password string) (*wire, *scram.ClientConversation) {
	t.Helper()
	w := e.dial()
	if hs := w.RoundTrip(protocoltest.Handshake(0, "SCRAM-SHA-512")).(*kmsg.SASLHandshakeResponse); hs.ErrorCode != 0 {
		t.Fatalf("handshake %d", hs.ErrorCode)
	}
	conv := protocoltest.ScramClient(t, sasl.ScramSHA512, user, password)
	first, _ := conv.Step("")
	rawToken(w, []byte(first))
	sf, err := w.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	final, err := conv.Step(string(sf))
	if err != nil {
		t.Fatal(err)
	}
	rawToken(w, []byte(final))
	return w, conv
}

func TestRawV0Path(t *testing.T) {
	e := newEnv(t, nil)
	w, conv := v0Start(t, e, testUser, testPassword)
	sfin, err := w.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Step(string(sfin)); err != nil {
		t.Fatalf("server-final: %v", err)
	}
	meta := w.RoundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(meta.Brokers) != 1 || meta.Brokers[0].Host != "proxy.test" {
		t.Fatalf("%+v", meta.Brokers)
	}

	// A bad password on the v0 path closes with nothing written.
	w, _ = v0Start(t, e, testUser, "wrong")
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %x", b)
	}
}

func TestAfterAuthHandshakeAndAuthenticateGet34AndStayOpen(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	// Pipeline: Metadata (upstream), SaslHandshake (local), Metadata again.
	// Responses must come back in request order.
	m1 := kmsg.NewPtrMetadataRequest()
	c1 := w.Send(m1)
	hs := protocoltest.Handshake(1, "SCRAM-SHA-512")
	c2 := w.Send(hs)
	m3 := kmsg.NewPtrMetadataRequest()
	c3 := w.Send(m3)
	w.Recv(m1, c1)
	if r := w.Recv(hs, c2).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 34 || len(r.SupportedMechanisms) != 0 {
		t.Fatalf("%+v", r)
	}
	w.Recv(m3, c3)
	a := protocoltest.Authenticate(2, []byte("x"))
	if r := w.RoundTrip(a).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 34 {
		t.Fatalf("%d", r.ErrorCode)
	}
	w.RoundTrip(kmsg.NewPtrMetadataRequest())
}

func TestProduceAcksZeroDoesNotStall(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	for i := 0; i < 5; i++ {
		p := produceRequest(t, i)
		p.Acks = 0
		w.Send(p)
	}
	// The next response must be Metadata's, not a stale produce slot.
	meta := w.RoundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(meta.Brokers) != 1 {
		t.Fatal("metadata lost behind acks=0 produce")
	}
}

func TestUnadvertisedVersionClosesAfterAuth(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	v := kmsg.NewPtrVoteRequest() // controller-only: never advertised
	w.Send(v)
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %x", b)
	}
}

func TestAuthTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AuthTimeout = 200 * time.Millisecond })
	w := e.dial()
	w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
	// expectClosed fails the test if the connection is still open after
	// its 5 s read deadline, far beyond the 200 ms auth timeout.
	w.ExpectClosed()
}

func TestSessionLifetime(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		expiry time.Time
		max    time.Duration
		want   time.Duration
		has    bool
	}{
		{time.Time{}, 0, 0, false},
		{time.Time{}, time.Minute, time.Minute, true},
		{now.Add(time.Hour), 0, time.Hour, true},
		{now.Add(time.Hour), time.Minute, time.Minute, true},
		{now.Add(-time.Hour), time.Minute, 0, true},
	} {
		got, has := sessionLifetime(now, tc.expiry, tc.max)
		if got != tc.want || has != tc.has {
			t.Errorf("%+v: got %v %v", tc, got, has)
		}
	}
}
