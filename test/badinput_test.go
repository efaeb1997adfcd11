package test

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// dialTLS opens a hand-driven Kafka connection to the proxy process over TLS.
func dialTLS(t *testing.T, e *proxyEnv) *protocoltest.Wire {
	t.Helper()
	return protocoltest.Dial(t, e.Addr, e.clientTLS(t))
}

func TestBadInputOverTLS(t *testing.T) {
	e := startProxy(t, envOptions{})

	t.Run("wrong password and unknown user: 58 after the delay", func(t *testing.T) {
		for _, who := range [][2]string{{"alice", "nope"}, {"nobody", "nope"}} {
			w := dialTLS(t, e)
			// Both get a server-first: unknown users are answered with a
			// phantom challenge, so existence does not show (issue 6).
			_, final := w.StartLogin(sasl.ScramSHA512, who[0], who[1], 1)
			w.Send(protocoltest.Authenticate(1, []byte(final)))
			b, after := w.ExpectClosed()
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
		w.Send(kmsg.NewPtrMetadataRequest())
		if b, _ := w.ExpectClosed(); len(b) != 0 {
			t.Fatalf("wrote %x", b)
		}
	})

	t.Run("600 KiB frame before auth: closed", func(t *testing.T) {
		w := dialTLS(t, e)
		frame := make([]byte, 4+600<<10)
		binary.BigEndian.PutUint32(frame, 600<<10)
		_, _ = w.Conn().Write(frame)
		if b, _ := w.ExpectClosed(); len(b) != 0 {
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

// login runs SaslHandshake v1 and SaslAuthenticate v1 (SCRAM-SHA-512) and
// returns the session lifetime the proxy announced.
func login(t *testing.T, w *protocoltest.Wire, user, password string) int64 {
	t.Helper()
	r := w.Login(sasl.ScramSHA512, user, password, 1)
	if r.ErrorCode != 0 {
		t.Fatalf("login: %d", r.ErrorCode)
	}
	return r.SessionLifetimeMillis
}
