package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/upstream/upstreamtest"
)

var (
	proxyP = dtoken.Principal{Type: "User", Name: "proxy"}
	aliceP = dtoken.Principal{Type: "User", Name: "alice"}
	bobP   = dtoken.Principal{Type: "User", Name: "bob"}
)

func newTestBrokerTokens(t *testing.T) (*BrokerTokens, *upstreamtest.TokenBroker, *atomic.Int64) {
	t.Helper()
	var now atomic.Int64
	now.Store(time.Unix(1_700_000_000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	b := &upstreamtest.TokenBroker{Key: "secret", Requester: proxyP, Now: clock}
	bt := NewBrokerTokens(BrokerTokensOptions{Dial: b, Self: "proxy", SecretKey: "secret", Mechanism: "SCRAM-SHA-512", Now: clock})
	return bt, b, &now
}

// Clients see the brokers' tokens without the proxy: it is no renewer, a
// token it requested names its owner as requester, and a token it owns is
// not shown at all.
func TestBrokerTokensClientView(t *testing.T) {
	bt, b, _ := newTestBrokerTokens(t)
	far := time.Unix(1_800_000_000, 0)
	viaProxy := b.Add(aliceP, proxyP, []dtoken.Principal{bobP, proxyP}, far)
	direct := b.Add(aliceP, bobP, nil, far)
	b.Add(proxyP, proxyP, nil, far)
	toks, err := bt.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 {
		t.Fatalf("%d tokens shown, want 2 (the proxy's own is hidden)", len(toks))
	}
	for _, tok := range toks {
		switch tok.ID {
		case viaProxy:
			if tok.Requester != aliceP || len(tok.Renewers) != 1 || tok.Renewers[0] != bobP {
				t.Errorf("token the proxy requested: requester %v renewers %v, want alice and [bob]", tok.Requester, tok.Renewers)
			}
		case direct:
			if tok.Requester != bobP {
				t.Errorf("token bob requested shows requester %v", tok.Requester)
			}
		default:
			t.Errorf("unexpected token %s owned by %v", tok.ID, tok.Owner)
		}
		if tok.OwnerOrRenewer(proxyP) {
			t.Errorf("token %s: the proxy counts as owner or renewer", tok.ID)
		}
	}
}

// Logins read a description at most MaxAge old: within it, one describe
// serves them all; concurrent logins past it share one describe.
func TestBrokerTokensDescribeAtMostEveryMaxAge(t *testing.T) {
	bt, b, now := newTestBrokerTokens(t)
	id := b.Add(aliceP, proxyP, []dtoken.Principal{proxyP}, time.Unix(1_800_000_000, 0))
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := bt.LookupToken(ctx, sasl.ScramSHA512, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.Describes.Load(); n != 1 {
		t.Fatalf("%d describes for 5 logins within the max age, want 1", n)
	}
	now.Add(int64(DefaultBrokerTokensMaxAge))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := bt.LookupToken(ctx, sasl.ScramSHA512, id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := b.Describes.Load(); n != 2 {
		t.Fatalf("%d describes after 20 concurrent logins past the max age, want 2", n)
	}
}

// A token login finds the owner and expiry; the credential is derived
// once; unknown tokens, tokens under another key and tokens gone from the
// brokers are unknown.
func TestBrokerTokensLookup(t *testing.T) {
	bt, b, _ := newTestBrokerTokens(t)
	ctx := context.Background()
	expiry := time.Unix(1_800_000_000, 0)
	id := b.Add(aliceP, proxyP, []dtoken.Principal{proxyP}, expiry)
	tc, err := bt.LookupToken(ctx, sasl.ScramSHA512, id)
	if err != nil || tc.OwnerName != "alice" || !tc.Expiry.Equal(expiry) {
		t.Fatalf("lookup: %+v %v", tc, err)
	}
	again, _ := bt.LookupToken(ctx, sasl.ScramSHA512, id)
	if string(again.Credential.Salt) != string(tc.Credential.Salt) {
		t.Fatal("the credential was derived again for a second login")
	}
	want, err := sasl.DeriveCredential(sasl.ScramSHA512, bt.LoginIdentity(id).Password, tc.Credential.Salt, tc.Credential.Iterations)
	if err != nil || string(want.StoredKey) != string(tc.Credential.StoredKey) {
		t.Fatal("the credential is not derived from base64(HMAC)")
	}
	if _, err := bt.LookupToken(ctx, sasl.ScramSHA512, "nope"); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatalf("unknown token: %v", err)
	}
	other := &upstreamtest.TokenBroker{Key: "another key", Requester: proxyP}
	otherID := other.Add(aliceP, proxyP, nil, expiry)
	bt2 := NewBrokerTokens(BrokerTokensOptions{Dial: other, Self: "proxy", SecretKey: "secret", Mechanism: "SCRAM-SHA-512"})
	if _, err := bt2.LookupToken(ctx, sasl.ScramSHA512, otherID); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatalf("token under another key: %v", err)
	}
	mac := dtoken.HMAC("secret", id)
	if _, _, err := bt.Expire(ctx, mac, -1); err != nil {
		t.Fatal(err)
	}
	// Expired through this proxy: seen at once, and its credential dropped.
	if _, err := bt.LookupToken(ctx, sasl.ScramSHA512, id); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatalf("expired token: %v", err)
	}
	bt.credMu.Lock()
	n := len(bt.creds)
	bt.credMu.Unlock()
	if n != 0 {
		t.Fatalf("%d credentials kept for tokens gone from the brokers", n)
	}
}

// The upstream identity of a token login is the same token: id and
// base64(HMAC) under the brokers' key, with tokenauth.
func TestBrokerTokensLoginIdentity(t *testing.T) {
	bt, _, _ := newTestBrokerTokens(t)
	id := bt.LoginIdentity("abc")
	if !id.Token || id.Username != "abc" || id.Mechanism != "SCRAM-SHA-512" || id.Password == "" {
		t.Fatalf("%v", id)
	}
}

// In upstream.principal_mode client with the broker store, a client that
// logged in with a broker token goes upstream with that token; a password
// login gets its principal's own token; an identities mapping wins over
// both; without the broker store a token login gets the principal's token.
func TestSecurityForwardsTheLoginToken(t *testing.T) {
	bt, b, _ := newTestBrokerTokens(t)
	tokens := NewTokens(TokensOptions{Dial: b, Requester: "proxy", Mechanism: "SCRAM-SHA-512"})
	mapped := Identity{Mechanism: "PLAIN", Username: "team"}
	sec := &Security{Tokens: tokens, LoginTokens: bt, Mappings: []Mapping{{Principals: []string{"User:team-*"}, Identity: mapped}}}
	ctx := context.Background()
	id, err := sec.identityFor(ctx, login{principal: "User:alice", tokenID: "tok-1"})
	if err != nil || *id != bt.LoginIdentity("tok-1") {
		t.Fatalf("token login: %v %v, want the login's own token", id, err)
	}
	id, err = sec.identityFor(ctx, login{principal: "User:alice"})
	if err != nil || !id.Token || id.Username == "tok-1" {
		t.Fatalf("password login: %v %v, want alice's own broker token", id, err)
	}
	if id, _ := sec.identityFor(ctx, login{principal: "User:team-a", tokenID: "tok-2"}); *id != mapped {
		t.Fatalf("mapped principal: %v", id)
	}
	sec.LoginTokens = nil
	id, err = sec.identityFor(ctx, login{principal: "User:alice", tokenID: "tok-1"})
	if err != nil || id.Username == "tok-1" {
		t.Fatalf("token login without the broker store: %v %v, want alice's own broker token", id, err)
	}
}
