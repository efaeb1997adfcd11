package dtoken

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

var (
	k1 = Key{ID: "k1", Secret: "first-secret"}
	k2 = Key{ID: "k2", Secret: "second-secret"}
)

// gauge records what Options.KeyTokens reports, as a metric would.
type gauge struct {
	mu sync.Mutex
	m  map[string]int
}

func (g *gauge) set(id string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]int{}
	}
	g.m[id] = n
}

func (g *gauge) get(id string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.m[id]
	return n, ok
}

func keyed(t *testing.T, store TokenStore, c *clock, g *gauge, keys ...Key) *Manager {
	t.Helper()
	o := Options{Keys: keys, Store: store, SuperUsers: []string{"User:admin"}, Now: c.now}
	if g != nil {
		o.KeyTokens = g.set
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCreate(t *testing.T, m *Manager, life time.Duration) Created {
	t.Helper()
	out, err := m.Create(alice, "", "", nil, life)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func logsIn(t *testing.T, m *Manager, out Created) error {
	t.Helper()
	return tokenLogin(t, m, sasl.ScramSHA512, out.Token.ID, out.HMAC)
}

// TestRotation walks an operator's rotation: tokens minted under k1; then
// [k2, k1], where k1's tokens keep logging in, renewing and showing with
// their HMAC while new tokens are minted under k2; then [k2], where k1's
// tokens are unknown to logins, renew, expire and describe, k2's go on,
// and the count per key shows it all.
func TestRotation(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	store := NewMemStore()
	g := &gauge{}
	m := keyed(t, store, c, g, k1)
	old := mustCreate(t, m, 0)
	mustCreate(t, m, time.Hour) // expires before the sweep below
	if old.Token.KeyID != "k1" || string(old.HMAC) != string(HMAC(k1.Secret, old.Token.ID)) {
		t.Fatalf("minted under %q with the wrong HMAC", old.Token.KeyID)
	}
	if n, _ := g.get("k1"); n != 2 {
		t.Fatalf("k1 counts %d tokens, want 2", n)
	}

	g = &gauge{}
	m = keyed(t, store, c, g, k2, k1) // restarted with a new first key
	if n, ok := g.get("k2"); !ok || n != 0 {
		t.Fatalf("k2 is reported %d (%v) at start, want 0", n, ok)
	}
	if err := logsIn(t, m, old); err != nil {
		t.Fatalf("a k1 token under [k2, k1]: %v", err)
	}
	if _, err := m.Renew(alice, old.HMAC, time.Hour); err != nil {
		t.Fatalf("renewing a k1 token under [k2, k1]: %v", err)
	}
	stored, _ := store.LoadTokens()
	for _, i := range stored {
		if i.ID == old.Token.ID && (i.KeyID != "k1" || !sameCredentials(i, old.Token)) {
			t.Fatalf("renewal changed the token's key or credentials: %+v", i)
		}
	}
	if err := logsIn(t, m, old); err != nil {
		t.Fatalf("a renewed k1 token: %v", err)
	}
	fresh := mustCreate(t, m, 0)
	if fresh.Token.KeyID != "k2" || string(fresh.HMAC) != string(HMAC(k2.Secret, fresh.Token.ID)) {
		t.Fatalf("a new token under [k2, k1] was minted under %q", fresh.Token.KeyID)
	}
	if err := logsIn(t, m, fresh); err != nil {
		t.Fatal(err)
	}
	described, _ := m.Describe(alice, nil)
	if len(described) != 3 {
		t.Fatalf("describe under [k2, k1] shows %d tokens, want 3", len(described))
	}
	for _, d := range described {
		if d.Info.ID == old.Token.ID && string(d.HMAC) != string(old.HMAC) {
			t.Fatal("describe shows a k1 token with another HMAC than it was issued with")
		}
	}
	if got := m.TokensByKey(); got["k1"] != 2 || got["k2"] != 1 || len(got) != 2 {
		t.Fatalf("tokens by key under [k2, k1]: %v", got)
	}
	if a, b := func() (int, int) { x, _ := g.get("k1"); y, _ := g.get("k2"); return x, y }(); a != 2 || b != 1 {
		t.Fatalf("KeyTokens reported k1=%d k2=%d, want 2 and 1", a, b)
	}

	g = &gauge{}
	m = keyed(t, store, c, g, k2) // k1 dropped
	if err := logsIn(t, m, old); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("a k1 token logs in after k1 was dropped: %v", err)
	}
	if _, err := m.LookupToken(t.Context(), sasl.ScramSHA256, old.Token.ID); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatalf("lookup of a k1 token after k1 was dropped: %v, want unknown", err)
	}
	if _, err := m.Renew(alice, old.HMAC, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("renew of a k1 token after k1 was dropped: %v", err)
	}
	if _, err := m.Expire(alice, old.HMAC, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expire of a k1 token after k1 was dropped: %v", err)
	}
	if _, err := m.Renew(alice, HMAC(k2.Secret, old.Token.ID), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a k1 token found under k2's HMAC: %v", err)
	}
	if described, _ := m.Describe(admin, nil); len(described) != 1 || described[0].Info.ID != fresh.Token.ID {
		t.Fatalf("describe after k1 was dropped: %+v", described)
	}
	if err := logsIn(t, m, fresh); err != nil {
		t.Fatalf("a k2 token under [k2]: %v", err)
	}
	if got := m.TokensByKey(); got["k2"] != 1 || got[UnlistedKeyID] != 2 {
		t.Fatalf("tokens by key under [k2]: %v", got)
	}
	if n, _ := g.get(UnlistedKeyID); n != 2 {
		t.Fatalf("KeyTokens reported %d unlisted, want 2", n)
	}
	// The k1 tokens owner may create as many as before: unusable tokens do
	// not count against the limit. The sweep removes them when they expire.
	if m.live(alice.Principal, c.t) != 1 {
		t.Fatalf("alice has %d live tokens, want 1 (k1's do not count)", m.live(alice.Principal, c.t))
	}
	c.t = c.t.Add(2 * time.Hour) // short, and old's renewed expiry, are past
	if n, err := m.Sweep(); n != 2 || err != nil {
		t.Fatalf("sweep removed %d (%v), want the two expired k1 tokens", n, err)
	}
	if n, _ := g.get(UnlistedKeyID); n != 0 {
		t.Fatalf("KeyTokens reported %d unlisted after the sweep", n)
	}

	// Listing k1 again (a rollback) brings back what it minted and is
	// still stored: nothing was rewritten when it was left out.
	keep := mustCreate(t, keyed(t, store, c, nil, k1), 0)
	m = keyed(t, store, c, nil, k2)
	if err := logsIn(t, m, keep); err == nil {
		t.Fatal("a k1 token logs in under [k2]")
	}
	if err := logsIn(t, keyed(t, store, c, nil, k2, k1), keep); err != nil {
		t.Fatalf("a k1 token after k1 is listed again: %v", err)
	}
}

// TestKeyOfOlderRecords: the single-key settings are the one-key list
// {DefaultKeyID}; their tokens keep working when that secret is listed
// under another id (the fingerprint decides), a record without a
// fingerprint goes by its key id, one with neither belongs to the last
// listed key, and a new secret under an old id does not inherit tokens.
func TestKeyOfOlderRecords(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	store := NewMemStore()
	single, err := New(Options{SecretKey: k1.Secret, Store: store, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	legacy := mustCreate(t, single, 0)
	if legacy.Token.KeyID != DefaultKeyID {
		t.Fatalf("the single key mints under %q, want %q", legacy.Token.KeyID, DefaultKeyID)
	}
	if err := logsIn(t, keyed(t, store, c, nil, k2, Key{ID: "renamed", Secret: k1.Secret}), legacy); err != nil {
		t.Fatalf("a token of the single key, its secret listed under another id: %v", err)
	}
	if err := logsIn(t, keyed(t, store, c, nil, Key{ID: DefaultKeyID, Secret: "a new secret"}), legacy); err == nil {
		t.Fatal("a new secret under the old id logs in the old key's token")
	}

	byID, neither := legacy.Token, legacy.Token
	byID.ID, byID.KeyCheck = "by-id-token-0000000000", nil
	neither.ID, neither.KeyID, neither.KeyCheck, neither.Credentials = "no-key-token-000000000", "", nil, nil
	for _, i := range []Info{byID, neither} {
		if err := store.PutToken(i); err != nil {
			t.Fatal(err)
		}
	}
	m := keyed(t, store, c, nil, k2, Key{ID: DefaultKeyID, Secret: k1.Secret})
	if err := tokenLogin(t, m, sasl.ScramSHA512, byID.ID, HMAC(k1.Secret, byID.ID)); err != nil {
		t.Fatalf("a record with a key id and no fingerprint: %v", err)
	}
	if err := tokenLogin(t, m, sasl.ScramSHA256, neither.ID, HMAC(k1.Secret, neither.ID)); err != nil {
		t.Fatalf("a record with neither, under the last listed key: %v", err)
	}
	if err := tokenLogin(t, m, sasl.ScramSHA256, neither.ID, HMAC(k2.Secret, neither.ID)); err == nil {
		t.Fatal("a record with neither logs in under the first key")
	}
}

// TestKeyOptions: the key list is refused when it cannot be used.
func TestKeyOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"both forms", Options{SecretKey: "s", Keys: []Key{k1}}, "not both"},
		{"no id", Options{Keys: []Key{{Secret: "s"}}}, "needs an id"},
		{"no secret", Options{Keys: []Key{{ID: "k"}}}, "and a secret"},
		{"id twice", Options{Keys: []Key{k1, {ID: "k1", Secret: "other"}}}, `"k1" is listed twice`},
		{"secret twice", Options{Keys: []Key{k1, {ID: "k3", Secret: k1.Secret}}}, "same secret"},
		{"reserved id", Options{Keys: []Key{{ID: UnlistedKeyID, Secret: "s"}}}, "not a key id"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if s := (Key{ID: "k", Secret: "hunter2"}).GoString(); strings.Contains(s, "hunter2") {
		t.Errorf("a key prints its secret: %s", s)
	}
}
