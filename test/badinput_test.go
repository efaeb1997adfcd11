package test

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
)

// tlsWire is a hand-driven Kafka connection to the proxy process over TLS.
type tlsWire struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialTLS(t *testing.T, e *proxyEnv) *tlsWire {
	t.Helper()
	c, err := tls.Dial("tcp", e.Addr, e.clientTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &tlsWire{t: t, c: c}
}

func (w *tlsWire) send(req kmsg.Request) {
	w.corr++
	var f kmsg.RequestFormatter
	if _, err := w.c.Write(f.AppendRequest(nil, req, w.corr)); err != nil {
		w.t.Fatal(err)
	}
}

// recv reads one response body (header v0 responses only).
func (w *tlsWire) recv(resp kmsg.Response, version int16) {
	w.t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(w.c, size[:]); err != nil {
		w.t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(w.c, b); err != nil {
		w.t.Fatal(err)
	}
	resp.SetVersion(version)
	if err := resp.ReadFrom(b[4:]); err != nil {
		w.t.Fatal(err)
	}
}

// closed waits for the proxy to close and returns what it wrote and when.
func (w *tlsWire) closed() ([]byte, time.Duration) {
	start := time.Now()
	b, _ := io.ReadAll(w.c)
	return b, time.Since(start)
}

func TestBadInputOverTLS(t *testing.T) {
	e := startProxy(t, envOptions{})

	t.Run("wrong password and unknown user: 58 after the delay", func(t *testing.T) {
		for _, who := range [][2]string{{"alice", "nope"}, {"nobody", "nope"}} {
			w := dialTLS(t, e)
			// Both get a server-first: unknown users are answered with a
			// phantom challenge, so existence does not show (issue 6).
			w.send(authenticateV1(w.startLogin(t, who[0], who[1])))
			b, after := w.closed()
			if after < 80*time.Millisecond {
				t.Errorf("%s: closed after %v, before the 100ms delay", who[0], after)
			}
			r := kmsg.NewPtrSASLAuthenticateResponse()
			r.SetVersion(1)
			if len(b) < 8 || r.ReadFrom(b[8:]) != nil || r.ErrorCode != 58 ||
				*r.ErrorMessage != "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512" {
				t.Fatalf("%s: got %x", who[0], b)
			}
		}
	})

	t.Run("non-SASL request before auth: closed, nothing written", func(t *testing.T) {
		w := dialTLS(t, e)
		w.send(kmsg.NewPtrMetadataRequest())
		if b, _ := w.closed(); len(b) != 0 {
			t.Fatalf("wrote %x", b)
		}
	})

	t.Run("600 KiB frame before auth: closed", func(t *testing.T) {
		w := dialTLS(t, e)
		frame := make([]byte, 4+600<<10)
		binary.BigEndian.PutUint32(frame, 600<<10)
		_, _ = w.c.Write(frame)
		if b, _ := w.closed(); len(b) != 0 {
			t.Fatalf("wrote %x", b)
		}
	})

	t.Run("plaintext Kafka to the TLS port: one clear log line", func(t *testing.T) {
		c, err := net.Dial("tcp", e.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var f kmsg.RequestFormatter
		_, _ = c.Write(f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(e.logs.String(), "client is speaking plaintext Kafka to the TLS listener") {
			if time.Now().After(deadline) {
				t.Fatal("no log line about plaintext on the TLS port")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("the proxy still serves a good client", func(t *testing.T) {
		rec := &recorder{}
		if err := e.Cluster.CreateTopic("after-bad", 3, nil); err != nil {
			t.Fatal(err)
		}
		produceConsume(t, e, scramAuth("alice"), "after-bad", 10, rec)
		rec.check(t, e)
	})
}

// startLogin runs SaslHandshake v1 and the first SaslAuthenticate v1 round
// (SCRAM-SHA-512) and returns the client-final message to send next.
func (w *tlsWire) startLogin(t *testing.T, user, password string) string {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "SCRAM-SHA-512"
	w.send(hs)
	w.recv(kmsg.NewPtrSASLHandshakeResponse(), 1)
	cl, _ := scram.SHA512.NewClientUnprepped(user, password, "")
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	w.send(authenticateV1(first))
	r1 := kmsg.NewPtrSASLAuthenticateResponse()
	w.recv(r1, 1)
	final, err := conv.Step(string(r1.SASLAuthBytes))
	if r1.ErrorCode != 0 || err != nil {
		t.Fatalf("%s: round 1: %d %v", user, r1.ErrorCode, err)
	}
	return final
}

func authenticateV1(msg string) *kmsg.SASLAuthenticateRequest {
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SetVersion(1)
	auth.SASLAuthBytes = []byte(msg)
	return auth
}

// login runs SaslHandshake v1 and SaslAuthenticate v1 and returns the
// session lifetime the proxy announced.
func (w *tlsWire) login(t *testing.T, user, password string) int64 {
	t.Helper()
	w.send(authenticateV1(w.startLogin(t, user, password)))
	r := kmsg.NewPtrSASLAuthenticateResponse()
	w.recv(r, 1)
	if r.ErrorCode != 0 {
		t.Fatalf("login: %d", r.ErrorCode)
	}
	return r.SessionLifetimeMillis
}
