package dtoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

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

// Spec §5.3 vector through the package's HMAC.
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
		want     int16
	}{
		{"token-authenticated first", tokenConn, "bob", []Principal{{"Group", "x"}}, 64},
		{"other owner needs permission", alice, "bob", []Principal{{"Group", "x"}}, 65},
		{"renewer must be a User", alice, "", []Principal{{"Group", "x"}}, 67},
		{"super user may create for others", admin, "bob", nil, 0},
		{"self", alice, "", []Principal{{"User", "bob"}}, 0},
	} {
		out, err := m.Create(tc.caller, "", tc.owner, tc.renewers, 0)
		if err != nil || out.Code != tc.want {
			t.Errorf("%s: code %d err %v, want %d", tc.name, out.Code, err, tc.want)
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
	if out, _ := disabled.Create(alice, "", "", nil, 0); out.Code != 61 {
		t.Fatalf("disabled: %d", out.Code)
	}
}

func TestRenewExpireOrders(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m := newManager(t, "k", NewMemStore(), c)
	out, _ := m.Create(admin, "User", "alice", []Principal{{"User", "bob"}}, 0)
	h := out.HMAC

	if code, _, _ := m.Renew(admin, h, 0); code != 63 {
		t.Fatalf("requester (not owner/renewer) renew: %d", code)
	}
	if code, _, _ := m.Renew(alice, []byte("nope"), 0); code != 62 {
		t.Fatalf("unknown hmac: %d", code)
	}
	c.t = c.t.Add(time.Hour)
	code, exp, _ := m.Renew(bob, h, 48*time.Hour)
	if code != 0 || !exp.Equal(c.t.Add(24*time.Hour)) {
		t.Fatalf("renewer renew: %d %v (period capped at expiry_time)", code, exp)
	}
	if code, exp, _ := m.Expire(alice, h, time.Minute); code != 0 || !exp.Equal(c.t.Add(time.Minute)) {
		t.Fatalf("expire period: %d %v", code, exp)
	}
	c.t = c.t.Add(2 * time.Minute)
	if code, _, _ := m.Renew(alice, h, 0); code != 66 {
		t.Fatalf("renew expired: %d", code)
	}
	if code, _, _ := m.Expire(bob, h, time.Minute); code != 66 {
		t.Fatalf("expire (period >= 0) expired: %d", code)
	}
	if code, _, _ := m.Expire(admin, h, -1); code != 63 {
		t.Fatalf("non-renewer expire: %d", code)
	}
	if code, exp, _ := m.Expire(alice, h, -1); code != 0 || !exp.Equal(c.t) {
		t.Fatalf("expire now: %d %v", code, exp)
	}
	if code, _, _ := m.Renew(alice, h, 0); code != 62 {
		t.Fatalf("removed token: %d", code)
	}
	tokenConn := alice
	tokenConn.TokenAuthenticated = true
	for _, f := range []func() int16{
		func() int16 { c, _, _ := m.Renew(tokenConn, h, 0); return c },
		func() int16 { c, _, _ := m.Expire(tokenConn, h, 0); return c },
		func() int16 { c, _ := m.Describe(tokenConn, nil); return c },
	} {
		if code := f(); code != 64 {
			t.Fatalf("token-authenticated: %d", code)
		}
	}
}

func TestDescribeVisibility(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m := newManager(t, "k", NewMemStore(), c)
	m.Create(alice, "", "", nil, 0)
	m.Create(admin, "User", "carol", []Principal{{"User", "bob"}}, 0)
	count := func(caller Caller, owners []Principal) int {
		code, d := m.Describe(caller, owners)
		if code != 0 {
			t.Fatalf("code %d", code)
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
	if code, _, _ := again.Renew(alice, keep.HMAC, 0); code != 0 {
		t.Fatalf("renew after restart: %d (hmac recomputed from the key)", code)
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
	if code, _, _ := rotated.Renew(alice, keep.HMAC, 0); code != 62 {
		t.Fatalf("old hmac under a new key: %d", code)
	}
}

func TestKafkaAPIShapes(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	api := API{M: newManager(t, "k", NewMemStore(), c)}
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	req.SetVersion(3)
	req.OwnerPrincipalName = kmsg.StringPtr("bob")
	resp, err := api.Handle(context.Background(), "User:alice", false, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.CreateDelegationTokenResponse)
	if r.ErrorCode != 65 || r.IssueTimestamp != -1 || r.PrincipalName != "bob" || r.TokenRequesterPrincipalName != "alice" || r.TokenID != "" {
		t.Fatalf("%+v", r)
	}
	d := kmsg.NewPtrDescribeDelegationTokenRequest()
	resp, _ = api.Handle(context.Background(), "User:alice", true, d)
	if resp.(*kmsg.DescribeDelegationTokenResponse).ErrorCode != 64 {
		t.Fatal("describe from a token connection")
	}
	rn := kmsg.NewPtrRenewDelegationTokenRequest()
	resp, _ = api.Handle(context.Background(), "User:alice", true, rn)
	if rr := resp.(*kmsg.RenewDelegationTokenResponse); rr.ErrorCode != 64 || rr.ExpiryTimestamp != -1 {
		t.Fatalf("%+v", rr)
	}
	resp, _ = api.Handle(context.Background(), "User:alice", false, rn)
	if rr := resp.(*kmsg.RenewDelegationTokenResponse); rr.ErrorCode != 62 || rr.ExpiryTimestamp != 0 {
		t.Fatalf("%+v", rr)
	}
}
