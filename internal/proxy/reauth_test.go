package proxy

import (
	"encoding/binary"
	"hash/crc32"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// testClock is a settable Options.Now, so the KIP-368 deadlines and the
// one-second re-authentication interval are reached without sleeping.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// reauthEnv is a proxy whose sessions have a KIP-368 deadline (maxReauth)
// on a test clock; bob is a second user, for the principal-change rule.
func reauthEnv(t *testing.T, maxReauth time.Duration) (*env, *testClock) {
	clock := newTestClock()
	e := newEnv(t, func(o *Options) {
		o.Auth = sasl.NewAuthenticator(sasl.Options{Users: testUsersWithBob(t), PhantomKey: []byte("test-phantom-key")})
		o.MaxReauth = maxReauth
		o.Now = clock.Now
	})
	return e, clock
}

// loggedIn dials and logs in as alice with SCRAM-SHA-512 at SaslAuthenticate v2.
func loggedIn(t *testing.T, e *env) *wire {
	t.Helper()
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatalf("login: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	return w
}

// decodeAt decodes the response frame b (size prefix included) to req.
func decodeAt(t *testing.T, b []byte, req kmsg.Request, corr int32) kmsg.Response {
	t.Helper()
	if len(b) < 8 || int32(binary.BigEndian.Uint32(b[4:])) != corr {
		t.Fatalf("no response with correlation %d: %x", corr, b)
	}
	if int(binary.BigEndian.Uint32(b)) != len(b)-4 {
		t.Fatalf("more than one frame before the close: %x", b)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	hl, err := protocol.ResponseHeaderLen(b[4:], req.Key(), req.GetVersion())
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.ReadFrom(b[4+hl:]); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReauthenticationRenewsTheSession(t *testing.T) {
	e, clock := reauthEnv(t, time.Hour)
	w := e.dial()
	r := w.Login(sasl.ScramSHA512, testUser, testPassword, 1)
	if r.ErrorCode != 0 || r.SessionLifetimeMillis != time.Hour.Milliseconds() {
		t.Fatalf("login: %d, lifetime %d", r.ErrorCode, r.SessionLifetimeMillis)
	}
	w.RoundTrip(kmsg.NewPtrMetadataRequest())
	for _, v := range []int16{0, 1, 2} {
		clock.Add(2 * time.Second)
		r := w.Login(sasl.ScramSHA512, testUser, testPassword, v)
		if r.ErrorCode != 0 {
			t.Fatalf("re-authentication v%d: %d %v", v, r.ErrorCode, r.ErrorMessage)
		}
		if want := time.Hour.Milliseconds(); v >= 1 && r.SessionLifetimeMillis != want {
			t.Fatalf("re-authentication v%d: lifetime %d, want %d", v, r.SessionLifetimeMillis, want)
		}
		w.RoundTrip(kmsg.NewPtrMetadataRequest())
	}
	// The same principal may switch mechanism on a new connection only;
	// token and password logins of one owner may replace each other (not
	// exercised here: no token store).
}

func TestReauthenticationPastTheDeadlineIsAllowed(t *testing.T) {
	e, clock := reauthEnv(t, time.Minute)
	w := loggedIn(t, e)
	clock.Add(2 * time.Minute)
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 || r.SessionLifetimeMillis != time.Minute.Milliseconds() {
		t.Fatalf("re-authentication after expiry: %d, lifetime %d", r.ErrorCode, r.SessionLifetimeMillis)
	}
	w.RoundTrip(kmsg.NewPtrMetadataRequest())
}

func TestExpiredSessionClosesOnItsNextRequest(t *testing.T) {
	e, clock := reauthEnv(t, time.Minute)
	w := loggedIn(t, e)
	w.RoundTrip(kmsg.NewPtrMetadataRequest())
	clock.Add(time.Minute + time.Millisecond)
	w.Send(kmsg.NewPtrMetadataRequest())
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %x", b)
	}
}

func TestSecondReauthenticationWithinASecondGets34(t *testing.T) {
	e, clock := reauthEnv(t, time.Hour)
	w := loggedIn(t, e)
	clock.Add(2 * time.Second)
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatalf("first re-authentication: %d", r.ErrorCode)
	}
	clock.Add(999 * time.Millisecond)
	if r := w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512")).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 34 || len(r.SupportedMechanisms) != 0 {
		t.Fatalf("handshake within a second: %+v", r)
	}
	// Still authenticated, not re-authenticating.
	w.RoundTrip(kmsg.NewPtrMetadataRequest())
	clock.Add(time.Millisecond)
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatalf("re-authentication a second later: %d", r.ErrorCode)
	}
}

// reauthStarted logs in as alice on a session with a one-hour lifetime
// and, two seconds later, sends the SaslHandshake for mech that starts a
// re-authentication.
func reauthStarted(t *testing.T, mech string) (*wire, *kmsg.SASLHandshakeResponse) {
	t.Helper()
	e, clock := reauthEnv(t, time.Hour)
	w := loggedIn(t, e)
	clock.Add(2 * time.Second)
	return w, w.RoundTrip(protocoltest.Handshake(1, mech)).(*kmsg.SASLHandshakeResponse)
}

// closedAfterDelay returns what the proxy wrote before closing, and fails
// the test if it closed before the failed-auth delay.
func closedAfterDelay(t *testing.T, w *wire) []byte {
	t.Helper()
	b, after := w.ExpectClosed()
	if after < 40*time.Millisecond {
		t.Errorf("closed after %v, before the delay", after)
	}
	return b
}

func TestFailedReauthentication(t *testing.T) {
	for _, tc := range []struct {
		name, user, password string
		v                    int16
		want                 string
	}{
		{"another principal", "bob", "bob-secret", 2,
			"Cannot change principals during re-authentication from User.alice: User.bob"},
		{"wrong password", testUser, "wrong", 1,
			"Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := reauthStarted(t, "SCRAM-SHA-512")
			conv := protocoltest.ScramClient(t, sasl.ScramSHA512, tc.user, tc.password)
			first, _ := conv.Step("")
			r1 := w.RoundTrip(protocoltest.Authenticate(tc.v, []byte(first))).(*kmsg.SASLAuthenticateResponse)
			final, err := conv.Step(string(r1.SASLAuthBytes))
			if err != nil {
				t.Fatal(err)
			}
			req := protocoltest.Authenticate(tc.v, []byte(final))
			corr := w.Send(req)
			r := decodeAt(t, closedAfterDelay(t, w), req, corr).(*kmsg.SASLAuthenticateResponse)
			if r.ErrorCode != 58 || r.ErrorMessage == nil || *r.ErrorMessage != tc.want || len(r.SASLAuthBytes) != 0 || r.SessionLifetimeMillis != 0 {
				t.Fatalf("got %d %v %q lifetime %d", r.ErrorCode, r.ErrorMessage, r.SASLAuthBytes, r.SessionLifetimeMillis)
			}
		})
	}
}

// Kafka accepts a re-authentication handshake naming another mechanism and
// fails the SaslAuthenticate that follows, closing with nothing written.
func TestReauthenticationWithAnotherMechanismFailsOnTheNextFrame(t *testing.T) {
	w, hs := reauthStarted(t, "SCRAM-SHA-256")
	if hs.ErrorCode != 0 || len(hs.SupportedMechanisms) != 2 || hs.SupportedMechanisms[0] != "SCRAM-SHA-512" {
		t.Fatalf("handshake: %+v", hs)
	}
	conv := protocoltest.ScramClient(t, sasl.ScramSHA256, testUser, testPassword)
	first, _ := conv.Step("")
	w.Send(protocoltest.Authenticate(2, []byte(first)))
	if b := closedAfterDelay(t, w); len(b) != 0 {
		t.Fatalf("wrote %x", b)
	}
}

func TestOtherRequestDuringReauthenticationGets34ThenCloses(t *testing.T) {
	w, _ := reauthStarted(t, "SCRAM-SHA-512")
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kgo", "1.0"
	corr := w.Send(req)
	if r := decodeAt(t, closedAfterDelay(t, w), req, corr).(*kmsg.ApiVersionsResponse); r.ErrorCode != 34 || len(r.ApiKeys) != 0 {
		t.Fatalf("got %+v", r)
	}
}

// TestReauthenticationUnderPipelinedProduce re-authenticates a connection
// again and again while Produce responses are still on their way to the
// client, so the reader changes the session's SASL state while the writer
// delivers. Under -race it proves the writer never reads that state.
func TestReauthenticationUnderPipelinedProduce(t *testing.T) {
	e, clock := reauthEnv(t, time.Hour)
	w := loggedIn(t, e)
	const rounds, inFlight = 30, 16
	for round := 0; round < rounds; round++ {
		clock.Add(1500 * time.Millisecond)
		var reqs []kmsg.Request
		var corrs []int32
		for i := 0; i < inFlight; i++ {
			p := produceRequest(t, round*inFlight+i)
			reqs, corrs = append(reqs, p), append(corrs, w.Send(p))
		}
		// The handshake follows the produce requests without waiting: the
		// reader takes it (and starts re-authenticating) while the writer
		// is still delivering their responses.
		hs := protocoltest.Handshake(1, "SCRAM-SHA-512")
		hsCorr := w.Send(hs)
		for i, p := range reqs {
			resp := w.Recv(p, corrs[i]).(*kmsg.ProduceResponse)
			if len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("round %d: produce %d failed: %+v", round, i, resp.Topics)
			}
		}
		if r := w.Recv(hs, hsCorr).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatalf("round %d: re-authentication handshake: %d", round, r.ErrorCode)
		}
		conv := protocoltest.ScramClient(t, sasl.ScramSHA512, testUser, testPassword)
		first, _ := conv.Step("")
		r1 := w.RoundTrip(protocoltest.Authenticate(2, []byte(first))).(*kmsg.SASLAuthenticateResponse)
		final, err := conv.Step(string(r1.SASLAuthBytes))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// The last SCRAM round is pipelined with the next produce requests,
		// so the state returns to authenticated while responses are owed.
		fin := protocoltest.Authenticate(2, []byte(final))
		finCorr := w.Send(fin)
		p := produceRequest(t, -round-1)
		pCorr := w.Send(p)
		if r := w.Recv(fin, finCorr).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 || r.SessionLifetimeMillis != time.Hour.Milliseconds() {
			t.Fatalf("round %d: re-authentication: %d %v", round, r.ErrorCode, r.ErrorMessage)
		}
		if resp := w.Recv(p, pCorr).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("round %d: produce after re-authentication failed", round)
		}
	}
}

// produceRequest is an acks=1 Produce v7 of one record to topic t.
func produceRequest(t testing.TB, n int) *kmsg.ProduceRequest {
	t.Helper()
	rec := kmsg.NewRecord()
	rec.Value = binary.BigEndian.AppendUint64(nil, uint64(n))
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // what follows the 1-byte varint length
	recs := rec.AppendTo(nil)
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.NumRecords = 1
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
	batch.Records = recs
	raw := batch.AppendTo(nil)
	batch.Length = int32(len(raw) - 12)
	raw = batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))

	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(7)
	p.Acks = 1
	p.TimeoutMillis = 5000
	topic := kmsg.NewProduceRequestTopic()
	topic.Topic = "t"
	part := kmsg.NewProduceRequestTopicPartition()
	part.Records = raw
	topic.Partitions = append(topic.Partitions, part)
	p.Topics = append(p.Topics, topic)
	return p
}

// A SASL frame on an authenticated connection is capped at
// sasl.max_receive_size, as Kafka's authenticator caps re-authentication
// frames, not at the request cap: it closes with nothing written and without
// waiting for (or allocating) the announced bytes.
func TestOversizedReauthenticationFrameCloses(t *testing.T) {
	for _, name := range []string{"handshake", "authenticate"} {
		t.Run(name, func(t *testing.T) {
			e, clock := reauthEnv(t, time.Hour)
			w := loggedIn(t, e)
			clock.Add(2 * time.Second)
			key := protocol.KeySASLHandshake
			if name == "authenticate" {
				w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
				key = protocol.KeySASLAuthenticate
			}
			size := e.srv.opts.MaxReceiveSize + 1 // far below MaxRequestSize
			head := binary.BigEndian.AppendUint32(nil, uint32(size))
			head = binary.BigEndian.AppendUint16(head, uint16(key))
			head = binary.BigEndian.AppendUint16(head, 1)
			head = binary.BigEndian.AppendUint32(head, 99)
			w.SendRaw(head)
			if b, _ := w.ExpectClosed(); len(b) != 0 {
				t.Fatalf("wrote %x", b)
			}
		})
	}
}

// A failed re-authentication is a password guess like a failed login (for
// another user's password, too): it counts for the name tried and the
// source address.
func TestFailedReauthenticationCountsInTheBackoff(t *testing.T) {
	e, clock := reauthEnv(t, time.Hour)
	w := loggedIn(t, e)
	clock.Add(2 * time.Second)
	w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
	conv := protocoltest.ScramClient(t, sasl.ScramSHA512, "bob", "a guess")
	first, _ := conv.Step("")
	r1 := w.RoundTrip(protocoltest.Authenticate(2, []byte(first))).(*kmsg.SASLAuthenticateResponse)
	final, err := conv.Step(string(r1.SASLAuthBytes))
	if err != nil {
		t.Fatal(err)
	}
	w.Send(protocoltest.Authenticate(2, []byte(final)))
	w.ExpectClosed()
	for _, k := range []string{"user:bob", "ip:127.0.0.1"} {
		if n := e.srv.backoff.count(k); n != 1 {
			t.Errorf("%s: %d failures counted, want 1", k, n)
		}
	}
}
