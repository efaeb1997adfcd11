package test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

// reconfigure edits the proxy's configuration file (read back with
// config.Load, so it is what the proxy itself reads) for its next start.
func (e *proxyEnv) reconfigure(t *testing.T, edit func(*config.Config)) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", e.cfgFile}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	edit(&c)
	writeConfig(t, e.cfgFile, c)
}

// tokensByKey checks the proxy's scram_proxy_delegation_tokens gauge: want
// maps key ids to their count.
func tokensByKey(t *testing.T, e *proxyEnv, want map[string]int) {
	t.Helper()
	_, metrics := scrape(t, e.MetricsAddr, "/metrics")
	for id, n := range want {
		line := `scram_proxy_delegation_tokens{key_id="` + id + `"} ` + strconv.Itoa(n)
		if !containsLine(metrics, line) {
			t.Errorf("metrics lack %q:\n%s", line, grepLines(metrics, "scram_proxy_delegation_tokens"))
		}
	}
}

// describedHMAC returns the HMAC a DescribeDelegationToken by alice shows
// for the token id, nil when it does not list it.
func describedHMAC(t *testing.T, e *proxyEnv, id string) []byte {
	t.Helper()
	ts, err := adminFor(t, e, scramAuth("alice")).DescribeDelegationTokens(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	for _, d := range ts {
		if d.TokenID == id {
			return d.HMAC
		}
	}
	return nil
}

// TestTokenKeyRotation is issue 19's rotation acceptance through the built
// proxy, with franz-go token logins over TLS against kfake, the proxy
// restarted on the same state.dir between steps: tokens minted under k1;
// then keys [k2, k1], where k1's tokens still log in (and renew, keeping
// their HMAC) and new ones are minted under k2; then [k2], where k1's
// tokens fail with 58 and are not found, and k2's work.
func TestTokenKeyRotation(t *testing.T) {
	k1File := filepath.Join(t.TempDir(), "token-key-1")
	if err := os.WriteFile(k1File, []byte("rotation-key-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k1 := config.TokenKey{ID: "k1", File: k1File}
	k2 := config.TokenKey{ID: "k2", Secret: "rotation-key-two"}
	state := filepath.Join(t.TempDir(), "state")
	e := startProxy(t, envOptions{topics: []string{"rot"}, config: func(c *config.Config) {
		c.Tokens.Keys = []config.TokenKey{k1}
		c.Authz.SuperUsers = []string{"User:admin"}
		c.State.Dir = state
	}})
	ctx := ctxT(t, 3*time.Minute)
	create := func() kadm.DelegationToken {
		t.Helper()
		tok, err := adminFor(t, e, scramAuth("alice")).CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return tok
	}

	old := create()
	rec := &recorder{}
	produceConsume(t, e, tokenMech(old), "rot", 5, rec)
	rec.check(t, e)
	tokensByKey(t, e, map[string]int{"k1": 1})

	e.reconfigure(t, func(c *config.Config) { c.Tokens.Keys = []config.TokenKey{k2, k1} })
	e.restart(t)
	tokensByKey(t, e, map[string]int{"k1": 1, "k2": 0})
	if err := ping(t, e, tokenMech(old)); err != nil {
		t.Fatalf("a k1 token under [k2, k1]: %v", err)
	}
	if _, err := adminFor(t, e, scramAuth("alice")).RenewDelegationToken(ctx, old.HMAC, time.Hour); err != nil {
		t.Fatalf("renewing a k1 token under [k2, k1]: %v", err)
	}
	if got := describedHMAC(t, e, old.TokenID); !bytes.Equal(got, old.HMAC) {
		t.Fatal("describe under [k2, k1] shows the k1 token with another HMAC than it was issued with")
	}
	fresh := create()
	tokensByKey(t, e, map[string]int{"k1": 1, "k2": 1})
	produceConsume(t, e, tokenMech(fresh), "rot", 5, &recorder{})
	if err := ping(t, e, tokenMech(old)); err != nil {
		t.Fatalf("a renewed k1 token: %v", err)
	}

	e.reconfigure(t, func(c *config.Config) { c.Tokens.Keys = []config.TokenKey{k2} })
	e.restart(t)
	if err := ping(t, e, tokenMech(old)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a k1 token after k1 was dropped: %v, want SASL_AUTHENTICATION_FAILED (58)", err)
	}
	if _, err := adminFor(t, e, scramAuth("alice")).RenewDelegationToken(ctx, old.HMAC, 0); !errors.Is(err, kerr.DelegationTokenNotFound) {
		t.Fatalf("renewing a k1 token after k1 was dropped: %v, want DELEGATION_TOKEN_NOT_FOUND", err)
	}
	if describedHMAC(t, e, old.TokenID) != nil {
		t.Fatal("describe lists a k1 token after k1 was dropped")
	}
	if err := ping(t, e, tokenMech(fresh)); err != nil {
		t.Fatalf("a k2 token under [k2]: %v", err)
	}
	produceConsume(t, e, tokenMech(fresh), "rot", 5, &recorder{})
	tokensByKey(t, e, map[string]int{"k2": 1, "(unlisted)": 1})
}
