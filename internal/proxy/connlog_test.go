package proxy

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestSessionLinesCarryConnectionFields: every line of a session names the
// connection, and lines after the login name the principal too.
func TestSessionLinesCarryConnectionFields(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, func(o *Options) { o.Logger = zap.New(core) })
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	w.Conn().Close()
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("connection closed").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, msg := range []string{"authenticated", "connection closed"} {
		entries := logs.FilterMessage(msg).All()
		if len(entries) != 1 {
			t.Fatalf("%d %q lines", len(entries), msg)
		}
		f := entries[0].ContextMap()
		if f[logConnID] == nil || f[logRemote] == nil || f[logPrincipal] != "User:"+testUser || f[logMechanism] != string(sasl.ScramSHA512) {
			t.Errorf("%q fields: %v", msg, f)
		}
	}
}

func TestConnLogWithDoesNotAlias(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	a := connLog{base: zap.New(core), fields: make([]zap.Field, 1, 4)}
	a.fields[0] = zap.Int("n", 1)
	b := a
	a.with(zap.String("side", "a"))
	b.with(zap.String("side", "b"))
	a.Info("x")
	b.Info("y")
	a.Debug("dropped below the level")
	got := logs.All()
	if len(got) != 2 || got[0].ContextMap()["side"] != "a" || got[1].ContextMap()["side"] != "b" {
		t.Fatalf("lines: %+v", got)
	}
}
