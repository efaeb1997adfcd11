package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestLogsNeverCarrySecrets runs successful and failed logins on both SASL
// paths through an observed debug-level logger and checks that no password,
// proof, signature, key, salted password or SCRAM message appears in any
// log message or field.
func TestLogsNeverCarrySecrets(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, func(o *Options) { o.Logger = zap.New(core) })

	var secrets []string
	addSecret := func(s string) {
		if len(s) >= 6 {
			secrets = append(secrets, s)
		}
	}
	addSecret(testPassword)
	addSecret("wrong-password-xyz")
	cred := testUsers(t)[string(sasl.ScramSHA512)+"/"+testUser]
	sp, _ := sasl.SaltedPassword(sasl.ScramSHA512, testPassword, cred.Salt, cred.Iterations)
	for _, b := range [][]byte{cred.StoredKey, cred.ServerKey, sp} {
		addSecret(base64.StdEncoding.EncodeToString(b))
		addSecret(string(b))
	}

	// v1 success and failure, recording every SCRAM message exchanged.
	for _, pw := range []string{testPassword, "wrong-password-xyz"} {
		w := e.dial()
		w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
		conv := protocoltest.ScramClient(t, sasl.ScramSHA512, testUser, pw)
		first, _ := conv.Step("")
		addSecret(first)
		r1 := w.RoundTrip(protocoltest.Authenticate(2, []byte(first))).(*kmsg.SASLAuthenticateResponse)
		addSecret(string(r1.SASLAuthBytes))
		final, _ := conv.Step(string(r1.SASLAuthBytes))
		addSecret(final)
		addSecret(final[strings.LastIndex(final, ",p=")+3:])
		if pw == testPassword {
			r2 := w.RoundTrip(protocoltest.Authenticate(2, []byte(final))).(*kmsg.SASLAuthenticateResponse)
			addSecret(string(r2.SASLAuthBytes))
			w.RoundTrip(kmsg.NewPtrMetadataRequest())
		} else {
			w.Send(protocoltest.Authenticate(2, []byte(final)))
			w.ExpectClosed()
		}
		w.Conn().Close()
	}
	// v0 raw path.
	w := e.dial()
	w.RoundTrip(protocoltest.Handshake(0, "SCRAM-SHA-512"))
	conv := protocoltest.ScramClient(t, sasl.ScramSHA512, testUser, testPassword)
	first, _ := conv.Step("")
	rawToken(w, []byte(first))
	sf, _ := w.ReadFrame()
	final, _ := conv.Step(string(sf))
	addSecret(final)
	rawToken(w, []byte(final))
	sfin, _ := w.ReadFrame()
	addSecret(string(sfin))
	w.Conn().Close()

	e.srv.Shutdown(t.Context())
	if logs.Len() < 5 {
		t.Fatalf("only %d log entries: the test is not observing the proxy", logs.Len())
	}
	var all bytes.Buffer
	for _, entry := range logs.All() {
		all.WriteString(entry.Message)
		b, _ := json.Marshal(entry.ContextMap())
		all.Write(b)
		all.WriteByte('\n')
	}
	for _, s := range secrets {
		if bytes.Contains(all.Bytes(), []byte(s)) {
			t.Errorf("log output contains a secret (%d bytes starting %q)", len(s), s[:4])
		}
	}
	if !strings.Contains(all.String(), "authentication failed") || !strings.Contains(all.String(), "invalid_proof") {
		t.Fatal("the failed login was not logged with its reason")
	}
}
