package test

import (
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

// withTokens turns delegation tokens on: a master key, admin as a super
// user, and a state directory for the tokens.
func withTokens(t *testing.T) func(*config.Config) {
	dir := filepath.Join(t.TempDir(), "state")
	return func(c *config.Config) {
		c.Tokens.MasterKey = "integration-master-key"
		c.Authz.SuperUsers = []string{"User:admin"}
		c.State.Dir = dir
	}
}

func adminFor(t *testing.T, e *proxyEnv, mech sasl.Mechanism) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(mech), kgo.DialTLSConfig(e.clientTLS(t)), kgo.RequestRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func tokenMech(tok kadm.DelegationToken) sasl.Mechanism {
	return scram.Auth{User: tok.TokenID, Pass: base64.StdEncoding.EncodeToString(tok.HMAC), IsToken: true}.AsSha512Mechanism()
}

func ping(t *testing.T, e *proxyEnv, mech sasl.Mechanism) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(mech), kgo.DialTLSConfig(e.clientTLS(t)), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return cl.Ping(ctxT(t, 10*time.Second))
}

// TestDelegationTokenLifecycle is issue 5's acceptance flow with kadm and a
// franz-go IsToken login, across a proxy restart.
func TestDelegationTokenLifecycle(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"tok"}, config: withTokens(t)})
	ctx := ctxT(t, 90*time.Second)
	alice := adminFor(t, e, scramAuth("alice"))
	tok, err := alice.CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(tok.TokenID) != 22 || len(tok.HMAC) != 64 || tok.Owner.Name != "alice" {
		t.Fatalf("token %+v", tok)
	}

	rec := &recorder{}
	produceConsume(t, e, tokenMech(tok), "tok", 10, rec)
	rec.check(t, e)

	describe := func(who string) int {
		ts, err := adminFor(t, e, scramAuth(who)).DescribeDelegationTokens(ctx)
		if err != nil {
			t.Fatalf("describe as %s: %v", who, err)
		}
		n := 0
		for _, d := range ts {
			if d.TokenID == tok.TokenID {
				n++
			}
		}
		return n
	}
	if describe("alice") != 1 || describe("admin") != 1 || describe("bob") != 0 {
		t.Fatalf("describe visibility: owner %d, super user %d, other %d", describe("alice"), describe("admin"), describe("bob"))
	}

	short, err := alice.ExpireDelegationToken(ctx, tok.HMAC, time.Minute)
	if err != nil {
		t.Fatalf("expire(1m): %v", err)
	}
	renewed, err := alice.RenewDelegationToken(ctx, tok.HMAC, 0)
	if err != nil || !renewed.After(short) {
		t.Fatalf("renew: %v (expiry %v, was %v)", err, renewed, short)
	}

	// A token-authenticated connection may not manage tokens: 64.
	_, err = adminFor(t, e, tokenMech(tok)).CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
	if !errors.Is(err, kerr.DelegationTokenRequestNotAllowed) {
		t.Fatalf("create over a token login: %v", err)
	}

	e.restart(t)
	if err := ping(t, e, tokenMech(tok)); err != nil {
		t.Fatalf("token login after restart: %v", err)
	}

	if _, err := adminFor(t, e, scramAuth("alice")).ExpireDelegationToken(ctx, tok.HMAC, -time.Millisecond); err != nil {
		t.Fatalf("expire(-1): %v", err)
	}
	err = ping(t, e, tokenMech(tok))
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("login with an expired token: %v", err)
	}
}

// TestReauthentication: with sasl.max_reauth 5s a franz-go producer keeps
// producing for 20 s on re-authenticated connections, and a client that
// never re-authenticates is closed on its first request after the deadline.
func TestReauthentication(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 20 s")
	}
	e := startProxy(t, envOptions{topics: []string{"reauth"}, config: func(c *config.Config) { c.SASL.MaxReauth = 5 * time.Second }})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(e.clientTLS(t)),
		kgo.DefaultProduceTopic("reauth"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 60*time.Second)
	end := time.Now().Add(20 * time.Second)
	n := 0
	for time.Now().Before(end) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("r")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", n, err)
		}
		n++
		time.Sleep(100 * time.Millisecond)
	}
	logs := e.logs.String()
	logins := strings.Count(logs, `"msg":"authenticated"`)
	reauths := strings.Count(logs, `"msg":"re-authenticated"`)
	if reauths < 3 || logins > 4 {
		t.Fatalf("%d records; %d logins, %d re-authentications: want connections kept across re-auth", n, logins, reauths)
	}
	t.Logf("%d records over 20 s; %d logins, %d re-authentications", n, logins, reauths)

	// A client that never re-authenticates.
	w := dialTLS(t, e)
	lifetime := login(t, w, "alice", testUsers["alice"])
	if lifetime != 5000 {
		t.Fatalf("session_lifetime_ms %d, want 5000", lifetime)
	}
	time.Sleep(5500 * time.Millisecond)
	w.Send(kmsg.NewPtrMetadataRequest())
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("expired session answered %x", b)
	}
}
