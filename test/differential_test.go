package test

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// kafkaFailedAuthDelay is connection.failed.authentication.delay.ms of the
// real-Kafka test bed and sasl.failed_auth_delay of the proxies compared
// with it. It is long enough that a delayed answer (never earlier than the
// delay) is told apart from a prompt one on a loaded machine.
const kafkaFailedAuthDelay = 500 * time.Millisecond

// delayedAfter is how long an answer must have taken to count as delayed.
const delayedAfter = kafkaFailedAuthDelay * 9 / 10

// diffCase is one edge or bad input, driven the same way against the real
// broker's SASL_SSL listener and against the proxy in front of it.
type diffCase struct {
	name string
	run  func(p *probe)
}

// knownDifference is a difference between the broker and the proxy that
// is on purpose; each is in docs/unsupported.md.
type knownDifference struct {
	field, broker, proxy string
}

// TestRealKafkaDifferential sends the same edge and bad inputs to a real
// Kafka broker's SASL_SSL listener and to the proxy in front of the same
// broker and compares what comes back field by field: error codes,
// messages, session lifetimes, SCRAM message shapes, and whether and when
// each connection closes (after which frame, before or after an answer,
// with or without the failed-authentication delay). Every difference must
// be one of the known ones listed per case, and every known one must still
// show, so a new difference or a fixed one fails the test.
func TestRealKafkaDifferential(t *testing.T) {
	k := realKafka(t, 1)
	tokens := withTokens(t)
	e := startProxy(t, envOptions{kafka: k, config: func(c *config.Config) {
		tokens(c)
		c.SASL.FailedAuthDelay = kafkaFailedAuthDelay
		// Kafka has no failed-login throttle (a deliberate difference,
		// docs/protocol.md "Failed-login throttle", tested in
		// internal/proxy): off, so that one case's failures do not hold
		// the next case's login (v0 failures close at once, so the next
		// case can come within the throttle's delay).
		c.SASL.MaxFailedAuthDelay = 0
	}})
	brokerTLS, err := tlsutil.ClientConfig(k.CAPEM, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	targets := []diffTarget{{k.Bootstrap(kafkabed.SASLSSL)[0], brokerTLS}, {e.Addr, e.clientTLS(t)}}

	// A delegation token of alice's on each side: the broker's from the
	// broker, the proxy's from the proxy.
	var toks [2]kadm.DelegationToken
	for i, tg := range targets {
		cl, err := kgo.NewClient(kgo.SeedBrokers(tg.addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(tg.tls))
		if err != nil {
			t.Fatal(err)
		}
		toks[i], err = kadm.NewClient(cl).CreateDelegationToken(ctxT(t, 30*time.Second), kadm.CreateDelegationToken{})
		cl.Close()
		if err != nil {
			t.Fatalf("create a delegation token at %s: %v", tg.addr, err)
		}
		waitTokenLogin(t, tg.addr, tg.tls, toks[i])
	}
	tokenLogin := func(p *probe, hmac []byte) {
		tok := toks[p.target]
		p.tokenExpiry = tok.ExpiryTimestamp
		if hmac == nil {
			hmac = tok.HMAC
		}
		p.scram(scramOpts{mech: sasl.ScramSHA512, user: tok.TokenID, password: base64.StdEncoding.EncodeToString(hmac),
			extensions: ",tokenauth=true"})
	}

	// Unknown users get a phantom challenge from the proxy and fail at
	// round 2; Kafka fails them at round 1 (docs/unsupported.md: unknown
	// users).
	const invalid = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
	phantom := []knownDifference{
		{"3 SaslAuthenticate: delayed", "true", "false"},
		{"3 SaslAuthenticate: error_code", "58", "0"},
		{"3 SaslAuthenticate: error_message", invalid, ""},
		{"3 SaslAuthenticate: auth_bytes", "<absent>", "server-first i=4096"},
		{"4 end", "closed", "<absent>"},
		{"4 SaslAuthenticate: delayed", "<absent>", "true"},
		{"4 SaslAuthenticate: outcome", "<absent>", "response"},
		{"4 SaslAuthenticate: error_code", "<absent>", "58"},
		{"4 SaslAuthenticate: error_message", "<absent>", invalid},
		{"4 SaslAuthenticate: session_lifetime_ms", "<absent>", "0"},
		{"5 end", "<absent>", "closed"},
	}

	cases := []struct {
		diffCase
		known []knownDifference
	}{
		{diffCase{"SCRAM-SHA-512 login", func(p *probe) { p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice"}) }}, nil},
		{diffCase{"SCRAM-SHA-256 login", func(p *probe) { p.scram(scramOpts{mech: sasl.ScramSHA256, user: "alice"}) }}, nil},
		{diffCase{"wrong password", func(p *probe) { p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", password: "wrong"}) }}, nil},
		{diffCase{"wrong password, SCRAM-SHA-256", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA256, user: "alice", password: "wrong"})
		}}, nil},
		{diffCase{"unknown user", func(p *probe) { p.scram(scramOpts{mech: sasl.ScramSHA512, user: "nobody", password: "nope"}) }}, phantom},
		{diffCase{"authzid mismatch", func(p *probe) { p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", authzid: "bob"}) }}, nil},
		{diffCase{"authzid equal to the user", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", authzid: "alice"})
		}}, nil},
		{diffCase{"wrong proof length", func(p *probe) { p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", proofLen: 32}) }}, nil},
		{diffCase{"tokenauth=true on a normal user", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", extensions: ",tokenauth=true"})
		}}, nil},
		{diffCase{"delegation token login", func(p *probe) { tokenLogin(p, nil) }}, nil},
		{diffCase{"delegation token login, wrong HMAC", func(p *probe) { tokenLogin(p, make([]byte, 64)) }}, nil},
		{diffCase{"client-final with another nonce", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", badNonce: true})
		}}, nil},
		{diffCase{"client-final with wrong channel binding", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", channelBinding: "eSws"})
		}}, nil},
		{diffCase{"mechanism name in lower case", func(p *probe) {
			p.apiVersions(3)
			p.handshake(1, "scram-sha-512")
		}}, nil},
		{diffCase{"SaslAuthenticate after authentication", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice"})
			p.authenticate(2, []byte("n,,n=alice,r=abc"))
		}}, nil},
		{diffCase{"unsupported mechanism", func(p *probe) {
			p.apiVersions(3)
			p.handshake(1, "PLAIN")
			p.finish()
		}}, nil},
		{diffCase{"request before the handshake", func(p *probe) {
			p.request("Metadata", kmsg.NewPtrMetadataRequest(), nil)
			p.finish()
		}}, nil},
		{diffCase{"SaslAuthenticate before the handshake", func(p *probe) {
			p.apiVersions(3)
			p.authenticate(2, []byte("n,,n=alice,r=abc"))
			p.finish()
		}}, nil},
		{diffCase{"oversize frame before authentication", func(p *probe) {
			p.apiVersions(3)
			frame := binary.BigEndian.AppendUint32(nil, 600<<10)
			p.exchange("oversize frame", append(frame, make([]byte, 1024)...))
			p.finish()
		}}, nil},
		{diffCase{"ApiVersions at an unknown version", func(p *probe) {
			p.apiVersions(127)
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", noApiVersions: true})
		}}, nil},
		{diffCase{"a second ApiVersions", func(p *probe) {
			p.apiVersions(3)
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice"})
		}}, nil},
		{diffCase{"SaslHandshake v0 and raw tokens", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", handshakeV0: true})
		}}, nil},
		{diffCase{"SaslHandshake v0 and raw tokens, wrong password", func(p *probe) {
			p.scram(scramOpts{mech: sasl.ScramSHA512, user: "alice", password: "wrong", handshakeV0: true})
		}}, nil},
	}

	var mu sync.Mutex
	var report []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := map[knownDifference]bool{}
			for _, d := range c.known {
				want[d] = true
			}
			// A mismatch must show twice: timing ("delayed") is judged on a
			// shared, loaded machine, so one stall does not fail the test.
			var got [2]*probe
			var unexpected, missing []knownDifference
			var diffs []knownDifference
			for attempt := 1; attempt <= 2; attempt++ {
				got = runCase(t, c.diffCase, targets)
				if t.Failed() {
					return
				}
				diffs = compareProbes(got[0], got[1])
				unexpected, missing = matchDifferences(diffs, want)
				if len(unexpected)+len(missing) == 0 {
					break
				}
				if attempt == 1 {
					t.Logf("first run: %d unexpected and %d missing difference(s); running the case again", len(unexpected), len(missing))
				}
			}
			for _, d := range unexpected {
				t.Errorf("new difference: %s: broker %q, proxy %q", d.field, d.broker, d.proxy)
			}
			for _, d := range missing {
				t.Errorf("expected difference no longer seen: %s: broker %q, proxy %q", d.field, d.broker, d.proxy)
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("broker:\n%s\nproxy:\n%s", got[0], got[1])
			}
			mu.Lock()
			report = append(report, fmt.Sprintf("%-48s %d difference(s)", c.name, len(diffs)))
			mu.Unlock()
		})
	}
	t.Cleanup(func() {
		sort.Strings(report)
		t.Logf("differential cases against Kafka %s:\n%s", kafkabed.Version(), strings.Join(report, "\n"))
	})
}

// runCase drives c against the broker and the proxy at once.
func runCase(t *testing.T, c diffCase, targets []diffTarget) [2]*probe {
	var got [2]*probe
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newProbe(t, tg.addr, tg.tls)
			p.target = i
			c.run(p)
			p.finish()
			got[i] = p
		}()
	}
	wg.Wait()
	return got
}

// matchDifferences splits diffs against the known ones: those not known,
// and the known ones that did not show.
func matchDifferences(diffs []knownDifference, known map[knownDifference]bool) (unexpected, missing []knownDifference) {
	seen := map[knownDifference]bool{}
	for _, d := range diffs {
		if known[d] {
			seen[d] = true
		} else {
			unexpected = append(unexpected, d)
		}
	}
	for d := range known {
		if !seen[d] {
			missing = append(missing, d)
		}
	}
	return unexpected, missing
}

// diffTarget is where a case is sent: the broker or the proxy.
type diffTarget struct {
	addr string
	tls  *tls.Config
}

// probe drives one connection and records what it sees as ordered
// "step: field" = value pairs. After the connection closes (or stops
// answering) further steps are skipped.
type probe struct {
	t      *testing.T
	target int // 0 the broker, 1 the proxy
	// tokenExpiry, for a token login, is when the token expires.
	tokenExpiry time.Time
	w           *protocoltest.Wire
	step        int
	keys        []string
	fields      map[string]string
	over        bool
	corr        int32
}

func newProbe(t *testing.T, addr string, tlsCfg *tls.Config) *probe {
	d := &net.Dialer{Timeout: protocoltest.Deadline}
	c, err := tls.DialWithDialer(d, "tcp", addr, tlsCfg)
	if err != nil {
		t.Error(err)
		return &probe{t: t, over: true, fields: map[string]string{}}
	}
	return &probe{t: t, w: protocoltest.NewWire(t, c), fields: map[string]string{}}
}

func (p *probe) set(field, value string) {
	k := strconv.Itoa(p.step) + " " + field
	if _, ok := p.fields[k]; !ok {
		p.keys = append(p.keys, k)
	}
	p.fields[k] = value
}

func (p *probe) String() string {
	var b strings.Builder
	for _, k := range p.keys {
		fmt.Fprintf(&b, "  %s = %q\n", k, p.fields[k])
	}
	return b.String()
}

// exchange writes frame (size prefix included) and reads one frame back.
// It records whether an answer came, the connection closed, or it stayed
// silent, and whether that took the failed-authentication delay.
func (p *probe) exchange(name string, frame []byte) []byte {
	if p.over {
		return nil
	}
	p.step++
	conn := p.w.Conn()
	start := time.Now()
	_ = conn.SetDeadline(start.Add(5 * time.Second))
	_, _ = conn.Write(frame) // a peer that closed early shows on the read
	b, err := p.w.ReadFrame()
	p.set(name+": delayed", strconv.FormatBool(time.Since(start) >= delayedAfter))
	switch {
	case err == nil:
		p.set(name+": outcome", "response")
		return b
	case isTimeout(err):
		p.set(name+": outcome", "no answer, still open")
	default:
		p.set(name+": outcome", "closed, no response")
	}
	p.over = true
	return nil
}

// finish records whether the connection is closed after the last step:
// read for twice the failed-authentication delay.
func (p *probe) finish() {
	if p.over {
		return
	}
	p.over = true
	p.step++
	start := time.Now()
	_ = p.w.Conn().SetDeadline(start.Add(2 * kafkaFailedAuthDelay))
	_, err := p.w.ReadFrame()
	switch {
	case err == nil:
		p.set("end", "unexpected frame")
	case isTimeout(err):
		p.set("end", "open")
	case time.Since(start) >= delayedAfter:
		p.set("end", "closed after the delay")
	default:
		p.set("end", "closed")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// request sends req and decodes its response at req's version (or at
// decodeVersion when not nil: ApiVersions answers an unsupported version
// at v0). It returns nil when no response came.
func (p *probe) request(name string, req kmsg.Request, decodeVersion *int16) kmsg.Response {
	if p.over {
		return nil
	}
	p.corr++
	var f kmsg.RequestFormatter
	b := p.exchange(name, f.AppendRequest(nil, req, p.corr))
	if b == nil {
		return nil
	}
	v := req.GetVersion()
	if decodeVersion != nil {
		v = *decodeVersion
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != p.corr {
		p.set(name+": correlation_id", strconv.Itoa(int(got)))
	}
	hl, err := protocol.ResponseHeaderLen(b, req.Key(), v)
	if err != nil {
		p.set(name+": decode", err.Error())
		return nil
	}
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if err := resp.ReadFrom(b[hl:]); err != nil {
		p.set(name+": decode", err.Error())
		return nil
	}
	return resp
}

// apiVersions sends ApiVersions at version v and records its error code
// and the ranges of the APIs a login uses.
func (p *probe) apiVersions(v int16) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(v)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "diff", "1.0"
	var dv *int16
	if v > 4 {
		zero := int16(0)
		dv = &zero
	}
	r, _ := p.request("ApiVersions", req, dv).(*kmsg.ApiVersionsResponse)
	if r == nil {
		return
	}
	p.set("ApiVersions: error_code", strconv.Itoa(int(r.ErrorCode)))
	ranges := map[int16]string{}
	for _, k := range r.ApiKeys {
		ranges[k.ApiKey] = fmt.Sprintf("%d-%d", k.MinVersion, k.MaxVersion)
	}
	for _, key := range []int16{protocol.KeyApiVersions, protocol.KeySASLHandshake, protocol.KeySASLAuthenticate} {
		p.set("ApiVersions: "+kmsg.NameForKey(key), ranges[key])
	}
	if r.ErrorCode != 0 {
		p.set("ApiVersions: api_keys", strconv.Itoa(len(r.ApiKeys)))
	}
}

// handshake sends SaslHandshake and records its error code and mechanisms;
// it reports success.
func (p *probe) handshake(v int16, mech string) bool {
	r, _ := p.request("SaslHandshake", protocoltest.Handshake(v, mech), nil).(*kmsg.SASLHandshakeResponse)
	if r == nil {
		return false
	}
	p.set("SaslHandshake: error_code", strconv.Itoa(int(r.ErrorCode)))
	p.set("SaslHandshake: mechanisms", strings.Join(r.SupportedMechanisms, ","))
	return r.ErrorCode == 0
}

// authenticate sends a SaslAuthenticate and records the response fields;
// it returns the auth bytes of a successful response.
func (p *probe) authenticate(v int16, b []byte) ([]byte, bool) {
	r, _ := p.request("SaslAuthenticate", protocoltest.Authenticate(v, b), nil).(*kmsg.SASLAuthenticateResponse)
	if r == nil {
		return nil, false
	}
	p.set("SaslAuthenticate: error_code", strconv.Itoa(int(r.ErrorCode)))
	msg := "<null>"
	if r.ErrorMessage != nil {
		msg = *r.ErrorMessage
	}
	p.set("SaslAuthenticate: error_message", msg)
	lifetime := strconv.FormatInt(r.SessionLifetimeMillis, 10)
	if !p.tokenExpiry.IsZero() && r.SessionLifetimeMillis > 0 {
		// Tokens on the two sides were made moments apart: compare where
		// the session ends, to the second.
		end := time.Now().Add(time.Duration(r.SessionLifetimeMillis) * time.Millisecond)
		if d := end.Sub(p.tokenExpiry); d > -2*time.Second && d < 2*time.Second {
			lifetime = "until the token expires"
		}
	}
	p.set("SaslAuthenticate: session_lifetime_ms", lifetime)
	return r.SASLAuthBytes, r.ErrorCode == 0
}

// rawToken writes a SASL token in a bare size-prefixed frame (after
// SaslHandshake v0) and returns the bare answer.
func (p *probe) rawToken(b []byte) ([]byte, bool) {
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	r := p.exchange("raw token", append(frame, b...))
	return r, r != nil
}

type scramOpts struct {
	mech           sasl.Mechanism
	user, password string // password "": the user's real one
	authzid        string
	extensions     string // appended to client-first, e.g. ",tokenauth=true"
	proofLen       int    // a client proof of this many bytes instead
	handshakeV0    bool   // SaslHandshake v0, then raw tokens
	noApiVersions  bool   // skip the ApiVersions that starts a login
	badNonce       bool   // client-final echoes a nonce other than the server's
	channelBinding string // client-final's c= instead of the GS2 header's
}

// scram runs a SCRAM login the way a client would, stopping at the first
// error, and after success sends ApiVersions as an authenticated request.
// The client side is written out here so the inputs can be bent.
func (p *probe) scram(o scramOpts) {
	if o.password == "" {
		o.password = testUsers[o.user]
	}
	if !o.noApiVersions {
		p.apiVersions(3)
	}
	hv := int16(1)
	if o.handshakeV0 {
		hv = 0
	}
	if !p.handshake(hv, string(o.mech)) {
		return
	}
	send := func(b []byte) ([]byte, bool) {
		if o.handshakeV0 {
			return p.rawToken(b)
		}
		return p.authenticate(2, b)
	}
	record := func(s string) {
		if o.handshakeV0 {
			p.set("raw token: bytes", s)
		} else {
			p.set("SaslAuthenticate: auth_bytes", s)
		}
	}
	nonce := make([]byte, 18)
	_, _ = rand.Read(nonce)
	cnonce := base64.StdEncoding.EncodeToString(nonce)
	gs2 := "n,,"
	if o.authzid != "" {
		gs2 = "n,a=" + o.authzid + ","
	}
	bare := "n=" + o.user + ",r=" + cnonce + o.extensions
	sf, ok := send([]byte(gs2 + bare))
	if !ok {
		return
	}
	attrs := scramAttrs(string(sf))
	if !strings.HasPrefix(attrs["r"], cnonce) || len(attrs["r"]) == len(cnonce) || attrs["s"] == "" {
		record("bad server-first: " + string(sf))
		return
	}
	record("server-first i=" + attrs["i"])
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	iters, err2 := strconv.Atoi(attrs["i"])
	if err != nil || err2 != nil {
		return
	}
	h := sha512.New
	if o.mech == sasl.ScramSHA256 {
		h = sha256.New
	}
	salted, err := pbkdf2.Key(h, o.password, salt, iters, h().Size())
	if err != nil {
		p.t.Error(err)
		return
	}
	cb, r := base64.StdEncoding.EncodeToString([]byte(gs2)), attrs["r"]
	if o.channelBinding != "" {
		cb = o.channelBinding
	}
	if o.badNonce {
		r += "x"
	}
	withoutProof := "c=" + cb + ",r=" + r
	authMsg := bare + "," + string(sf) + "," + withoutProof
	clientKey := hmacOf(h, salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	sig := hmacOf(h, stored.Sum(nil), authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	if o.proofLen > 0 {
		proof = proof[:o.proofLen]
	}
	fin, ok := send([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	if !ok {
		return
	}
	want := base64.StdEncoding.EncodeToString(hmacOf(h, hmacOf(h, salted, "Server Key"), authMsg))
	switch fa := scramAttrs(string(fin)); {
	case fa["v"] == want:
		record("server-final, signature valid")
	case fa["e"] != "":
		record("server-final e=" + fa["e"])
	default:
		record("server-final: " + string(fin))
	}
	if scramAttrs(string(fin))["v"] == want {
		p.apiVersions(3) // now an authenticated request
	}
}

func hmacOf(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramAttrs splits a SCRAM message into its attributes.
func scramAttrs(msg string) map[string]string {
	out := map[string]string{}
	for _, a := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(a, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
}

// compareProbes lists the fields whose values differ, in the broker's
// order and then the proxy's extra ones.
func compareProbes(broker, proxy *probe) []knownDifference {
	var out []knownDifference
	seen := map[string]bool{}
	for _, k := range append(append([]string{}, broker.keys...), proxy.keys...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		b, ok := broker.fields[k]
		if !ok {
			b = "<absent>"
		}
		x, ok := proxy.fields[k]
		if !ok {
			x = "<absent>"
		}
		if b != x {
			out = append(out, knownDifference{k, b, x})
		}
	}
	return out
}
