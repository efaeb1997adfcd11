// Package protocoltest is the hand-driven Kafka client the tests share: the
// proxy's package tests (internal/proxy) and the integration tests against
// the built binary (test/) write requests and read responses with it byte
// for byte, where a client library would hide what goes over the wire. It
// reads frames with protocol.FrameReader, like the proxy itself.
package protocoltest

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Deadline bounds every connection a Wire opens or wraps, so a test waiting
// for a response that never comes fails instead of hanging.
const Deadline = 10 * time.Second

// maxResponse caps a response frame; tests never expect more.
const maxResponse = 64 << 20

// Wire is one Kafka client connection driven by hand. Each method fails the
// test on an I/O or decoding error; none is safe for concurrent use.
type Wire struct {
	t      testing.TB
	conn   net.Conn
	frames *protocol.FrameReader
	corr   int32
	sent   time.Time // when the last write began
}

// NewWire wraps an open connection: it sets the Deadline and closes c when
// the test ends.
func NewWire(t testing.TB, c net.Conn) *Wire {
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(Deadline))
	return &Wire{t: t, conn: c, frames: protocol.NewFrameReader(c, maxResponse, nil)}
}

// Dial connects to addr, over TLS when tlsCfg is not nil.
func Dial(t testing.TB, addr string, tlsCfg *tls.Config) *Wire {
	t.Helper()
	d := &net.Dialer{Timeout: Deadline}
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsCfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return NewWire(t, c)
}

// Conn is the underlying connection, for raw writes and deadlines.
func (w *Wire) Conn() net.Conn { return w.conn }

// Send writes req with the next correlation id (1, 2, ...) and returns it.
func (w *Wire) Send(req kmsg.Request) int32 {
	w.t.Helper()
	w.corr++
	var f kmsg.RequestFormatter
	w.SendRaw(f.AppendRequest(nil, req, w.corr))
	return w.corr
}

// SendRaw writes b as it is.
func (w *Wire) SendRaw(b []byte) {
	w.t.Helper()
	w.sent = time.Now()
	if _, err := w.conn.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// ReadFrame returns the next frame's bytes after the size prefix, copied:
// the slice stays valid.
func (w *Wire) ReadFrame() ([]byte, error) {
	b, err := w.frames.Read()
	return bytes.Clone(b), err
}

// Recv reads the response to req sent with correlation id corr and decodes
// it at req's version.
func (w *Wire) Recv(req kmsg.Request, corr int32) kmsg.Response {
	w.t.Helper()
	b, err := w.ReadFrame()
	if err != nil {
		w.t.Fatalf("read the response to %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if len(b) < 4 {
		w.t.Fatalf("response of %d bytes", len(b))
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		w.t.Fatalf("correlation id %d, want %d", got, corr)
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

// RoundTrip sends req and returns its response.
func (w *Wire) RoundTrip(req kmsg.Request) kmsg.Response {
	w.t.Helper()
	return w.Recv(req, w.Send(req))
}

// ExpectClosed waits up to 5 s for the peer to close the connection and
// returns what it wrote first and how long the close came after the last
// write began (or after this call, if nothing was written). Measured from
// before the write, the figure is a sound lower bound for a delay the peer
// applies after reading: a test goroutine descheduled between its write and
// this call cannot make the close look early. A connection still open
// fails the test.
func (w *Wire) ExpectClosed() (written []byte, after time.Duration) {
	w.t.Helper()
	start := time.Now()
	from := w.sent
	if from.IsZero() {
		from = start
	}
	_ = w.conn.SetReadDeadline(start.Add(5 * time.Second))
	b, err := io.ReadAll(w.conn)
	if err != nil && !closedErr(err) {
		w.t.Fatalf("expected the connection closed, got %v", err)
	}
	return b, time.Since(from)
}

// closedErr reports an error that means the peer closed or reset.
func closedErr(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Handshake is a SaslHandshake request at version v for mech.
func Handshake(v int16, mech string) *kmsg.SASLHandshakeRequest {
	r := kmsg.NewPtrSASLHandshakeRequest()
	r.SetVersion(v)
	r.Mechanism = mech
	return r
}

// Authenticate is a SaslAuthenticate request at version v carrying b.
func Authenticate(v int16, b []byte) *kmsg.SASLAuthenticateRequest {
	r := kmsg.NewPtrSASLAuthenticateRequest()
	r.SetVersion(v)
	r.SASLAuthBytes = b
	return r
}

// ScramClient returns a client conversation for user and password, from
// xdg-go/scram: an implementation independent of the proxy's.
func ScramClient(t testing.TB, m sasl.Mechanism, user, password string) *scram.ClientConversation {
	t.Helper()
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

// StartLogin runs SaslHandshake v1 for m and the first SaslAuthenticate
// round at authVersion; it returns the conversation and the client-final
// message to send next. An error code in either response fails the test.
func (w *Wire) StartLogin(m sasl.Mechanism, user, password string, authVersion int16) (*scram.ClientConversation, string) {
	w.t.Helper()
	conv, r1 := w.firstRound(m, user, password, authVersion)
	if r1.ErrorCode != 0 {
		w.t.Fatalf("%s: SaslAuthenticate round 1: error %d", user, r1.ErrorCode)
	}
	final, err := conv.Step(string(r1.SASLAuthBytes))
	if err != nil {
		w.t.Fatalf("%s: server-first: %v", user, err)
	}
	return conv, final
}

// Login runs SaslHandshake v1 and SaslAuthenticate at authVersion to the
// end and returns the last response: the first round's when it carries an
// error, else the second's, whose server signature is checked on success.
func (w *Wire) Login(m sasl.Mechanism, user, password string, authVersion int16) *kmsg.SASLAuthenticateResponse {
	w.t.Helper()
	conv, r1 := w.firstRound(m, user, password, authVersion)
	if r1.ErrorCode != 0 {
		return r1
	}
	final, err := conv.Step(string(r1.SASLAuthBytes))
	if err != nil {
		w.t.Fatalf("%s: server-first: %v", user, err)
	}
	r2 := w.RoundTrip(Authenticate(authVersion, []byte(final))).(*kmsg.SASLAuthenticateResponse)
	if r2.ErrorCode == 0 {
		if _, err := conv.Step(string(r2.SASLAuthBytes)); err != nil {
			w.t.Fatalf("%s: server signature: %v", user, err)
		}
	}
	return r2
}

func (w *Wire) firstRound(m sasl.Mechanism, user, password string, authVersion int16) (*scram.ClientConversation, *kmsg.SASLAuthenticateResponse) {
	w.t.Helper()
	hs := w.RoundTrip(Handshake(1, string(m))).(*kmsg.SASLHandshakeResponse)
	if hs.ErrorCode != 0 {
		w.t.Fatalf("SaslHandshake %s: error %d", m, hs.ErrorCode)
	}
	conv := ScramClient(w.t, m, user, password)
	first, _ := conv.Step("")
	return conv, w.RoundTrip(Authenticate(authVersion, []byte(first))).(*kmsg.SASLAuthenticateResponse)
}
