package dtoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

var (
	alice = Caller{Principal: Principal{"User", "alice"}}
	bob   = Caller{Principal: Principal{"User", "bob"}}
	admin = Caller{Principal: Principal{"User", "admin"}}
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newManager(t *testing.T, key string, store TokenStore, c *clock) *Manager {
	t.Helper()
	m, err := New(Options{SecretKey: key, Store: store, SuperUsers: []string{"User:admin"}, Now: c.now,
		MaxLifetime: 7 * 24 * time.Hour, ExpiryTime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A fixed vector: HMAC-SHA512 of the token id under the secret key, as
// Kafka's DelegationTokenManager.createHmac computes it.
func TestHMACVector(t *testing.T) {
	got := base64.StdEncoding.EncodeToString(HMAC("kafka-dt-secret-key", "ABEiM0RVZneImaq7zN3u_w"))
	if got != "2GWFzYgg6T+OSVeo8ogI0+PO2fWASDxCEAnWJ3E5K7KWwwufg5BakjbZeHWNx+sRM/yU3aPQUffc2RIdMX7nKA==" {
		t.Fatal(got)
	}
}

func TestTokenIDShape(t *testing.T) {
	for i := 0; i < 200; i++ {
		id, err := NewTokenID(strings.NewReader(strings.Repeat("\xfb", 16) + strings.Repeat("x", 16)))
		if err != nil || len(id) != 22 || id[0] == '-' {
			t.Fatalf("%q %v", id, err)
		}
	}
}

func TestCreateOrderAndTimestamps(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m := newManager(t, "k", NewMemStore(), c)
	tokenConn := alice
	tokenConn.TokenAuthenticated = true
	for _, tc := range []struct {
		name     string
		caller   Caller
		owner    string
		renewers []Principal
		want     error
	}{
		{"token-authenticated first", tokenConn, "bob", []Principal{{"Group", "x"}}, ErrRequestNotAllowed},
		{"other owner needs permission", alice, "bob", []Principal{{"Group", "x"}}, ErrUnauthorized},
		{"renewer must be a User", alice, "", []Principal{{"Group", "x"}}, ErrInvalidPrincipalType},
		{"super user may create for others", admin, "bob", nil, nil},
		{"self", alice, "", []Principal{{"User", "bob"}}, nil},
	} {
		out, err := m.Create(tc.caller, "", tc.owner, tc.renewers, 0)
		if err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if out.Requester != tc.caller.Principal || (tc.owner != "" && out.Owner.Name != tc.owner) {
			t.Errorf("%s: owner %v requester %v", tc.name, out.Owner, out.Requester)
		}
	}
	out, _ := m.Create(alice, "", "", nil, time.Hour)
	if out.Token.Max != c.t.Add(time.Hour) || out.Token.Expiry != c.t.Add(time.Hour) {
		t.Fatalf("lifetime capped wrongly: %+v", out.Token)
	}
	out, _ = m.Create(alice, "", "", nil, 30*24*time.Hour)
	if out.Token.Max != c.t.Add(7*24*time.Hour) || out.Token.Expiry != c.t.Add(24*time.Hour) {
		t.Fatalf("max lifetime not capped: %+v", out.Token)
	}
	if !bytes.Equal(out.HMAC, HMAC("k", out.Token.ID)) {
		t.Fatal("hmac")
	}
	disabled := newManager(t, "", NewMemStore(), c)
	if _, err := disabled.Create(alice, "", "", nil, 0); err != ErrDisabled {
		t.Fatalf("disabled: %v", err)
	}
}

func TestRenewExpireOrders(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m := newManager(t, "k", NewMemStore(), c)
	out, _ := m.Create(admin, "User", "alice", []Principal{{"User", "bob"}}, 0)
	h := out.HMAC

	if _, err := m.Renew(admin, h, 0); err != ErrOwnerMismatch {
		t.Fatalf("requester (not owner/renewer) renew: %v", err)
	}
	if _, err := m.Renew(alice, []byte("nope"), 0); err != ErrNotFound {
		t.Fatalf("unknown hmac: %v", err)
	}
	c.t = c.t.Add(time.Hour)
	exp, err := m.Renew(bob, h, 48*time.Hour)
	if err != nil || !exp.Equal(c.t.Add(24*time.Hour)) {
		t.Fatalf("renewer renew: %v %v (period capped at expiry_time)", err, exp)
	}
	if exp, err := m.Expire(alice, h, time.Minute); err != nil || !exp.Equal(c.t.Add(time.Minute)) {
		t.Fatalf("expire period: %v %v", err, exp)
	}
	c.t = c.t.Add(2 * time.Minute)
	if _, err := m.Renew(alice, h, 0); err != ErrExpired {
		t.Fatalf("renew expired: %v", err)
	}
	if _, err := m.Expire(bob, h, time.Minute); err != ErrExpired {
		t.Fatalf("expire (period >= 0) expired: %v", err)
	}
	if _, err := m.Expire(admin, h, -1); err != ErrOwnerMismatch {
		t.Fatalf("non-renewer expire: %v", err)
	}
	if exp, err := m.Expire(alice, h, -1); err != nil || !exp.Equal(c.t) {
		t.Fatalf("expire now: %v %v", err, exp)
	}
	if _, err := m.Renew(alice, h, 0); err != ErrNotFound {
		t.Fatalf("removed token: %v", err)
	}
	tokenConn := alice
	tokenConn.TokenAuthenticated = true
	for _, f := range []func() error{
		func() error { _, err := m.Renew(tokenConn, h, 0); return err },
		func() error { _, err := m.Expire(tokenConn, h, 0); return err },
		func() error { _, err := m.Describe(tokenConn, nil); return err },
	} {
		if err := f(); err != ErrRequestNotAllowed {
			t.Fatalf("token-authenticated: %v", err)
		}
	}
}

func TestDescribeVisibility(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m := newManager(t, "k", NewMemStore(), c)
	m.Create(alice, "", "", nil, 0)
	m.Create(admin, "User", "carol", []Principal{{"User", "bob"}}, 0)
	count := func(caller Caller, owners []Principal) int {
		d, err := m.Describe(caller, owners)
		if err != nil {
			t.Fatal(err)
		}
		return len(d)
	}
	if n := count(alice, nil); n != 1 {
		t.Errorf("alice sees %d", n)
	}
	if n := count(bob, nil); n != 1 {
		t.Errorf("bob (renewer) sees %d", n)
	}
	if n := count(Caller{Principal: Principal{"User", "mallory"}}, nil); n != 0 {
		t.Errorf("mallory sees %d", n)
	}
	if n := count(admin, nil); n != 2 {
		t.Errorf("super user sees %d", n)
	}
	if n := count(admin, []Principal{}); n != 0 {
		t.Errorf("empty owners means none, got %d", n)
	}
	if n := count(admin, []Principal{{"User", "alice"}}); n != 1 {
		t.Errorf("owner filter: %d", n)
	}
}

func TestLookupAndLoginCredential(t *testing.T) {
	c := &clock{time.Now()}
	m := newManager(t, "k", NewMemStore(), c)
	out, _ := m.Create(alice, "", "", nil, 0)
	for _, mech := range sasl.Mechanisms() {
		tc, err := m.LookupToken(context.Background(), mech, out.Token.ID)
		if err != nil || tc.OwnerName != "alice" || tc.Credential.Iterations != 4096 || !tc.Expiry.Equal(out.Token.Expiry) {
			t.Fatalf("%s: %+v %v", mech, tc, err)
		}
		want, _ := sasl.DeriveCredential(mech, base64.StdEncoding.EncodeToString(out.HMAC), tc.Credential.Salt, 4096)
		if want.StoredForm() != tc.Credential.StoredForm() {
			t.Fatal("token credential is not SCRAM(base64(hmac))")
		}
	}
	if _, err := m.LookupToken(context.Background(), sasl.ScramSHA512, "nope"); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatal(err)
	}
}

func TestPersistenceAndSweep(t *testing.T) {
	c := &clock{time.Now()}
	store := NewMemStore()
	m := newManager(t, "k", store, c)
	keep, _ := m.Create(alice, "", "", nil, 0)
	gone, _ := m.Create(alice, "", "", nil, time.Minute)
	again := newManager(t, "k", store, c) // a restart
	if again.Len() != 2 {
		t.Fatalf("restart loaded %d", again.Len())
	}
	if _, err := again.Renew(alice, keep.HMAC, 0); err != nil {
		t.Fatalf("renew after restart: %v (hmac recomputed from the key)", err)
	}
	c.t = c.t.Add(2 * time.Minute)
	if n, err := again.Sweep(); n != 1 || err != nil {
		t.Fatalf("sweep %d %v", n, err)
	}
	infos, _ := store.LoadTokens()
	if len(infos) != 1 || infos[0].ID != keep.Token.ID {
		t.Fatalf("store after sweep: %+v (gone %s)", infos, gone.Token.ID)
	}
	// Another key: the stored ids remain, but every HMAC differs.
	rotated := newManager(t, "other", store, c)
	if _, err := rotated.Renew(alice, keep.HMAC, 0); err != ErrNotFound {
		t.Fatalf("old hmac under a new key: %v", err)
	}
}
