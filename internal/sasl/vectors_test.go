package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdg-go/scram"
)

type lookups struct {
	users  map[string]Credential // mech/name
	tokens map[string]TokenCredential
}

func (l lookups) LookupUser(_ context.Context, m Mechanism, n string) (Credential, error) {
	c, ok := l.users[string(m)+"/"+n]
	if !ok {
		return Credential{}, ErrUnknownCredential
	}
	return c, nil
}

func (l lookups) LookupToken(_ context.Context, m Mechanism, id string) (TokenCredential, error) {
	c, ok := l.tokens[string(m)+"/"+id]
	if !ok {
		return TokenCredential{}, ErrUnknownCredential
	}
	return c, nil
}

func mustStored(t *testing.T, m Mechanism, s string) Credential {
	t.Helper()
	c, err := ParseStoredForm(m, s)
	if err != nil {
		t.Fatal(err)
	}
	if c.StoredForm() != s {
		t.Fatalf("stored form does not round-trip:\n%s\n%s", c.StoredForm(), s)
	}
	return c
}

// exchange runs both rounds and checks each server message byte for byte.
func exchange(t *testing.T, a *Authenticator, m Mechanism, first, wantServerFirst, final, wantServerFinal string) *Conversation {
	t.Helper()
	conv, err := a.Start(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := conv.Step([]byte(first))
	if err != nil {
		t.Fatalf("client-first: %v", err)
	}
	if string(sf) != wantServerFirst {
		t.Fatalf("server-first\n got %s\nwant %s", sf, wantServerFirst)
	}
	sfin, err := conv.Step([]byte(final))
	if err != nil {
		t.Fatalf("client-final: %v", err)
	}
	if string(sfin) != wantServerFinal {
		t.Fatalf("server-final\n got %s\nwant %s", sfin, wantServerFinal)
	}
	if !conv.Done() {
		t.Fatal("not done")
	}
	return conv
}

func fixedNonce(n string) func() string { return func() string { return n } }

// The example exchange of RFC 7677 section 3 through the Kafka-style
// verifier (docs/protocol.md, "Test vectors").
func TestRFC7677Vector(t *testing.T) {
	cred := mustStored(t, ScramSHA256, "salt=W22ZaJ0SNY7soEsUEjb6gQ==,stored_key=WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,server_key=wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=,iterations=4096")
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	derived, err := DeriveCredential(ScramSHA256, "pencil", salt, 4096)
	if err != nil || derived.StoredForm() != cred.StoredForm() {
		t.Fatalf("derive: %v %s", err, derived.StoredForm())
	}
	a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{"SCRAM-SHA-256/user": cred}},
		nonce: fixedNonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")})
	conv := exchange(t, a, ScramSHA256,
		"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
	if r := conv.Result(); r.Principal != "user" || r.TokenAuthenticated {
		t.Fatalf("%+v", r)
	}
}

// alice / alice-secret, SCRAM-SHA-256, i=8192, a base-36 server nonce as
// Kafka makes them.
func TestAliceVector(t *testing.T) {
	stored := "salt=MXA0YjJtOXgzcjdjMHE4czV6Nnc0dDJ5aA==,stored_key=9ZSCpYvE1vMpGvoXPbqX8ucxVbCdCbk48+iAc7pg2KU=,server_key=2aIYQBWeCfYfoA4BacphSm06SgJ+ywqNt9VBfk/NFHg=,iterations=8192"
	cred := mustStored(t, ScramSHA256, stored)
	derived, err := DeriveCredential(ScramSHA256, "alice-secret", cred.Salt, 8192)
	if err != nil || derived.StoredForm() != stored {
		t.Fatalf("derive: %v", err)
	}
	a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{"SCRAM-SHA-256/alice": cred}},
		nonce: fixedNonce("3rfcnhyxq7fy0jygm7kcfwm4g")})
	exchange(t, a, ScramSHA256,
		"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL",
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcnhyxq7fy0jygm7kcfwm4g,s=MXA0YjJtOXgzcjdjMHE4czV6Nnc0dDJ5aA==,i=8192",
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcnhyxq7fy0jygm7kcfwm4g,p=KMZwJ1am3vB5nAgPNNZcOpC64Ah5OkVSAIQXcw0kK2Y=",
		"v=ckFG4PCRazDrnI0Fr7NEb+wDCvWmL1A3lhoIRuIWHjM=")
}

const (
	tokenID   = "ABEiM0RVZneImaq7zN3u_w"
	tokenHMAC = "2GWFzYgg6T+OSVeo8ogI0+PO2fWASDxCEAnWJ3E5K7KWwwufg5BakjbZeHWNx+sRM/yU3aPQUffc2RIdMX7nKA=="
	token512  = "salt=NWwxeThmMnZ0OGozbXFmcjZhNGsyaGdjMA==,stored_key=mP1UlJ6uLYJWDlo8qCB6IVduLAJJqutOAXa4wba5WxFWe5n9k4Gop2prTy2nARNbP/GVEMe16mP1f/ruXx6zsA==,server_key=S08WPyLzUdr0euGdnzcISmg1YQp8uRMFgOCbDHrIL1X6GYRoP4Wpquo6DIesQVJ76IoMSWBmRbrI5fgv6uHUMg==,iterations=4096"
	token256  = "salt=NWwxeThmMnZ0OGozbXFmcjZhNGsyaGdjMA==,stored_key=WEkl2BxR32FAwH6mabytezP9J5M0jPzJGkbyQHlBhag=,server_key=F05GXGAOIJL+X/GJZY7Iaw0koxNDGyAJKHJNwdE4MEU=,iterations=4096"
)

// The token HMAC (HMAC-SHA512 of the token id under the secret) and the
// SCRAM credentials derived from it (docs/protocol.md, "Delegation tokens").
func TestTokenHMACAndCredentialVectors(t *testing.T) {
	mac := hmac.New(sha512.New, []byte("kafka-dt-secret-key"))
	mac.Write([]byte(tokenID))
	sum := mac.Sum(nil)
	if hex.EncodeToString(sum) != "d86585cd8820e93f8e4957a8f28808d3e3ced9f580483c421009d62771392bb296c30b9f83905a9236d978758dc7eb1133fc94dda3d051f7dcd9121d317ee728" {
		t.Fatalf("hmac %x", sum)
	}
	if base64.StdEncoding.EncodeToString(sum) != tokenHMAC {
		t.Fatal("hmac base64")
	}
	for m, want := range map[Mechanism]string{ScramSHA512: token512, ScramSHA256: token256} {
		c, err := DeriveCredential(m, tokenHMAC, []byte("5l1y8f2vt8j3mqfr6a4k2hgc0"), 4096)
		if err != nil || c.StoredForm() != want {
			t.Fatalf("%s: %v\n got %s\nwant %s", m, err, c.StoredForm(), want)
		}
		sp, err := SaltedPassword(m, tokenHMAC, []byte("5l1y8f2vt8j3mqfr6a4k2hgc0"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := CredentialFromSaltedPassword(m, []byte("5l1y8f2vt8j3mqfr6a4k2hgc0"), sp, 4096)
		if err != nil || c2.StoredForm() != want {
			t.Fatalf("%s from salted password: %v", m, err)
		}
	}
}

func tokenAuthenticator(t *testing.T, expiry time.Time, reject bool) *Authenticator {
	return NewAuthenticator(Options{
		Users: lookups{},
		Tokens: lookups{tokens: map[string]TokenCredential{"SCRAM-SHA-512/" + tokenID: {
			Credential: mustStored(t, ScramSHA512, token512), OwnerName: "alice", Expiry: expiry}}},
		RejectExpiredTokens: reject,
		nonce:               fixedNonce("1x0r2b7e9m3k5s8q4v6z0h2jf"),
	})
}

const (
	tokFirst  = "n,,n=ABEiM0RVZneImaq7zN3u_w,r=k9Hq2mZ0pL7xR4vB8nT1wY6c,tokenauth=true"
	tokSFirst = "r=k9Hq2mZ0pL7xR4vB8nT1wY6c1x0r2b7e9m3k5s8q4v6z0h2jf,s=NWwxeThmMnZ0OGozbXFmcjZhNGsyaGdjMA==,i=4096"
	tokFinal  = "c=biws,r=k9Hq2mZ0pL7xR4vB8nT1wY6c1x0r2b7e9m3k5s8q4v6z0h2jf,p=wekCdSBNEX3WRnFC0jWz+rnPV+bsJxpB+eXNhVRzUu5mgwvl3BH5kycfFgsPkMrFs9lOsEBRA25yXJFeIIlmug=="
	tokSFinal = "v=WovMgCn07485R+fTx1ceLIMZm8lOi033d2EVer+RKF9y7T3n48Jx+qUU3Tb0QbPUICU0pMg5f2Y5EJ6df7TtOw=="
)

// A delegation-token login with tokenauth=true against that credential.
func TestTokenLoginVector(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	conv := exchange(t, tokenAuthenticator(t, exp, true), ScramSHA512, tokFirst, tokSFirst, tokFinal, tokSFinal)
	r := conv.Result()
	if r.Principal != "alice" || r.Username != tokenID || !r.TokenAuthenticated || !r.TokenExpiry.Equal(exp) {
		t.Fatalf("%+v", r)
	}
}

// The token login negated: the same proof against an AuthMessage without the
// extension (the client-first bytes differ) fails.
func TestTokenVectorWithoutExtensionFails(t *testing.T) {
	a := tokenAuthenticator(t, time.Now().Add(time.Hour), true)
	// Same token credential registered as a user, so round 1 succeeds.
	a.o.Users = lookups{users: map[string]Credential{"SCRAM-SHA-512/" + tokenID: mustStored(t, ScramSHA512, token512)}}
	conv, _ := a.Start(context.Background(), ScramSHA512)
	if _, err := conv.Step([]byte(strings.TrimSuffix(tokFirst, ",tokenauth=true"))); err != nil {
		t.Fatal(err)
	}
	_, err := conv.Step([]byte(tokFinal))
	if !errors.Is(err, ErrAuthFailed) || Reason(err) != "invalid_proof" {
		t.Fatalf("got %v", err)
	}
}

func TestExpiredTokenRefusedWhenConfigured(t *testing.T) {
	past := time.Now().Add(-time.Minute)
	conv, _ := tokenAuthenticator(t, past, true).Start(context.Background(), ScramSHA512)
	if _, err := conv.Step([]byte(tokFirst)); Reason(err) != "token_expired" {
		t.Fatalf("got %v", err)
	}
	// Kafka semantics: accepted until swept; the session lifetime is then 0.
	exchange(t, tokenAuthenticator(t, past, false), ScramSHA512, tokFirst, tokSFirst, tokFinal, tokSFinal)
}

// Real clients' messages: xdg-go (sarama's client) with and without authzid.
func TestXdgClientRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		user, authz string
		wantErr     error
	}{
		{"alice", "", nil},
		{"alice", "alice", nil},
		{"al,ice=", "", nil},
		{"alice", "bob", ErrAuthzIDMismatch},
	} {
		cred, _ := DeriveCredential(ScramSHA512, "pw", []byte("salt-salt-salt"), 4096)
		a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{"SCRAM-SHA-512/" + tc.user: cred}}})
		client, _ := scram.SHA512.NewClientUnprepped(tc.user, "pw", tc.authz)
		cc := client.NewConversation()
		conv, _ := a.Start(context.Background(), ScramSHA512)
		first, _ := cc.Step("")
		sf, err := conv.Step([]byte(first))
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("%+v: got %v", tc, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		final, _ := cc.Step(string(sf))
		sfin, err := conv.Step([]byte(final))
		if err != nil {
			t.Fatalf("%+v final: %v", tc, err)
		}
		if _, err := cc.Step(string(sfin)); err != nil || conv.Result().Principal != tc.user {
			t.Fatalf("%+v: client rejected server-final: %v", tc, err)
		}
	}
}

// Every row of the failure table in docs/protocol.md, "SCRAM failures".
func TestFailureCatalogue(t *testing.T) {
	cred, _ := DeriveCredential(ScramSHA512, "pw", []byte("salt-salt-salt"), 4096)
	low, _ := DeriveCredential(ScramSHA512, "pw", []byte("salt-salt-salt"), 1000)
	users := lookups{users: map[string]Credential{"SCRAM-SHA-512/alice": cred, "SCRAM-SHA-512/low": low,
		"SCRAM-SHA-512/" + tokenID: cred}}
	a := NewAuthenticator(Options{Users: users, nonce: fixedNonce("srv")})
	first := func(t *testing.T, msg string) error {
		conv, _ := a.Start(context.Background(), ScramSHA512)
		_, err := conv.Step([]byte(msg))
		return err
	}
	for msg, reason := range map[string]string{
		"y,,n=alice,r=abc":                        "malformed_client_first",
		"p=tls-unique,,n=alice,r=abc":             "malformed_client_first",
		"n,,n=al\u00e9,r=abc":                     "malformed_client_first",
		"n,,n=alice,r=":                           "malformed_client_first",
		"n,,n=,r=abc":                             "malformed_client_first",
		"n,,n=al=ice,r=abc":                       "malformed_client_first",
		"n,,n=alice,r=abc,":                       "malformed_client_first",
		"n,,n=alice,r=abc,1x=y":                   "malformed_client_first",
		"n,,n=mallory,r=abc":                      "unknown_user",
		"n,,n=" + tokenID + ",r=a,tokenauth=true": "unknown_token",
		"n,,n=low,r=abc":                          "iterations_too_low",
	} {
		if err := first(t, msg); !errors.Is(err, ErrAuthFailed) || Reason(err) != reason {
			t.Errorf("%q: got %v, want %s", msg, err, reason)
		}
	}
	// A token id used without tokenauth is a user lookup (found here only
	// because the test registered it as a user; normally unknown_user).
	if err := first(t, "n,,n="+tokenID+",r=abc"); err != nil {
		t.Errorf("token id as user: %v", err)
	}
	if err := first(t, "n,a=bob,n=alice,r=abc"); !errors.Is(err, ErrAuthzIDMismatch) {
		t.Errorf("authzid: %v", err)
	}
	// m= is accepted syntactically; unknown extensions are ignored.
	if err := first(t, "n,,m=x,n=alice,r=abc,foo=bar"); err != nil {
		t.Errorf("m= and extension: %v", err)
	}

	// Round 2 failures, from a valid round 1 with client nonce "abc".
	second := func(msg string) error {
		conv, _ := a.Start(context.Background(), ScramSHA512)
		if _, err := conv.Step([]byte("n,,n=alice,r=abc")); err != nil {
			t.Fatal(err)
		}
		_, err := conv.Step([]byte(msg))
		if err != nil {
			if _, again := conv.Step([]byte(msg)); Reason(again) != "unexpected_message" {
				t.Errorf("step after failure: %v", again)
			}
		}
		return err
	}
	proof := base64.StdEncoding.EncodeToString(make([]byte, 64))
	for msg, reason := range map[string]string{
		"c=biws,r=abcsrv,p=" + strings.TrimRight(proof, "="): "malformed_client_final",
		"c=biws,r=abcsrv":                "malformed_client_final",
		"c=bi\nws,r=abcsrv,p=" + proof:   "malformed_client_final",
		"c=biws,r=abcsrvX,p=" + proof:    "nonce_mismatch",
		"c=biws,r=abcsrv,p=" + proof:     "invalid_proof",
		"c=,r=XXabcsrv,p=" + proof:       "invalid_proof", // ends-with nonce and empty c= pass the checks
		"c=biws,r=abcsrv,e=x,p=" + proof: "invalid_proof",
	} {
		if err := second(msg); !errors.Is(err, ErrAuthFailed) || Reason(err) != reason {
			t.Errorf("%q: got %v, want %s", msg, err, reason)
		}
	}
	if err := second("c=biws,r=abcsrv,p=AAAA"); !errors.Is(err, ErrProofLength) {
		t.Errorf("short proof: %v", err)
	}
	if err := second("c=biws,r=abcsrv,p=" + base64.StdEncoding.EncodeToString(make([]byte, 65))); !errors.Is(err, ErrProofLength) {
		t.Errorf("long proof: %v", err)
	}
}

func TestParseClientFirstFields(t *testing.T) {
	cf, err := ParseClientFirst("n,a=al=2Cice,n=al=2Cice=3D,r=ab=c,tokenauth=TRUE,tokenauth=True,x=1")
	if err != nil {
		t.Fatal(err)
	}
	if cf.GS2Header != "n,a=al=2Cice," || cf.AuthzID != "al,ice" || cf.Username != "al,ice=" || cf.Nonce != "ab=c" ||
		!cf.TokenAuth() || cf.Extensions["x"] != "1" || cf.Bare != "n=al=2Cice=3D,r=ab=c,tokenauth=TRUE,tokenauth=True,x=1" {
		t.Fatalf("%+v", cf)
	}
	if cf, _ := ParseClientFirst("n,,n=a,r=b,tokenauth=yes"); cf.TokenAuth() {
		t.Fatal("only 'true' counts")
	}
}

func TestParseStoredFormErrors(t *testing.T) {
	good := "salt=c2FsdA==,stored_key=" + base64.StdEncoding.EncodeToString(make([]byte, 32)) +
		",server_key=" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ",iterations=4096"
	if _, err := ParseStoredForm(ScramSHA256, good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", good + ",extra=1", strings.Replace(good, "salt=c2FsdA==", "salt=c2FsdA", 1),
		strings.Replace(good, "iterations=4096", "iterations=x", 1), strings.Replace(good, "iterations=4096", "iterations=0", 1),
		strings.Replace(good, ",iterations=4096", "", 1), good + ",salt=c2FsdA==",
	} {
		if _, err := ParseStoredForm(ScramSHA256, bad); !errors.Is(err, ErrBadStoredForm) {
			t.Errorf("%q parsed: %v", bad, err)
		}
	}
	if _, err := ParseStoredForm(ScramSHA512, good); err == nil {
		t.Error("32-byte keys accepted for SHA-512")
	}
	// Errors never echo the input: a mangled entry (a password pasted in,
	// a key name typed over a secret) is secret-equivalent.
	for _, bad := range []string{good + ",hunter2-secret=1", "hunter2-secret=1,hunter2-secret=2", "hunter2-secret"} {
		_, err := ParseStoredForm(ScramSHA256, bad)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error for a mangled entry: %v", err)
		}
	}
	if s := (Credential{StoredKey: []byte("secret"), Iterations: 1}).String(); strings.Contains(s, "secret") {
		t.Fatal("String leaks keys")
	}
}

func TestServerNonceIsKafkaStyle(t *testing.T) {
	cred, _ := DeriveCredential(ScramSHA512, "pw", []byte("salt"), 4096)
	a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{"SCRAM-SHA-512/u": cred}}})
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		conv, _ := a.Start(context.Background(), ScramSHA512)
		sf, err := conv.Step([]byte("n,,n=u,r=c"))
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimPrefix(strings.Split(string(sf), ",")[0], "r=c")
		if len(n) == 0 || len(n) > 26 || strings.Trim(n, "0123456789abcdefghijklmnopqrstuvwxyz") != "" || seen[n] {
			t.Fatalf("nonce %q", n)
		}
		seen[n] = true
	}
}

func TestPhantomChallengeForUnknownUsers(t *testing.T) {
	cred, _ := DeriveCredential(ScramSHA512, "pw", []byte("0123456789abcdef01234567"), 4096)
	a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{"SCRAM-SHA-512/alice": cred}},
		PhantomKey: []byte("server-secret")})
	run := func(user, pw string) (string, error) {
		client, _ := scram.SHA512.NewClientUnprepped(user, pw, "")
		cc := client.NewConversation()
		conv, _ := a.Start(context.Background(), ScramSHA512)
		first, _ := cc.Step("")
		sf, err := conv.Step([]byte(first))
		if err != nil {
			t.Fatalf("%s: round 1 failed: %v", user, err)
		}
		final, err := cc.Step(string(sf))
		if err != nil {
			t.Fatalf("%s: client rejected server-first %q: %v", user, sf, err)
		}
		_, err = conv.Step([]byte(final))
		return string(sf), err
	}
	sf1, err := run("mallory", "x")
	if !errors.Is(err, ErrAuthFailed) || Reason(err) != "unknown_user" {
		t.Fatalf("phantom: %v", err)
	}
	sf2, _ := run("mallory", "y")
	salt := func(sf string) string { return strings.Split(sf, ",")[1] }
	if salt(sf1) != salt(sf2) || !strings.HasSuffix(sf1, ",i=4096") {
		t.Fatalf("phantom salt not stable: %s vs %s", sf1, sf2)
	}
	if _, err := run("alice", "wrong"); Reason(err) != "invalid_proof" {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := run("alice", "pw"); err != nil {
		t.Fatalf("real login: %v", err)
	}
	conv, _ := a.Start(context.Background(), ScramSHA512)
	if _, err := conv.Step([]byte("n,,n=" + strings.Repeat("a", 300) + ",r=x")); Reason(err) != "malformed_client_first" {
		t.Fatalf("oversized username: %v", err)
	}
}

// TestPhantomKeyFuncIsReadAtEachLogin: a fleet's shared phantom key can
// change once (two proxies created it at once); the salt follows it.
func TestPhantomKeyFuncIsReadAtEachLogin(t *testing.T) {
	key := []byte("first")
	var mu sync.Mutex
	a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{}}, PhantomKey: []byte("unused"),
		PhantomKeyFunc: func() []byte { mu.Lock(); defer mu.Unlock(); return key }})
	salt := func() string {
		client, _ := scram.SHA512.NewClientUnprepped("mallory", "x", "")
		conv, _ := a.Start(context.Background(), ScramSHA512)
		first, _ := client.NewConversation().Step("")
		sf, err := conv.Step([]byte(first))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(sf), ",")[1]
	}
	s1 := salt()
	if again := salt(); again != s1 {
		t.Fatal("phantom salt not stable under one key")
	}
	mu.Lock()
	key = []byte("second")
	mu.Unlock()
	if s2 := salt(); s2 == s1 {
		t.Fatal("the phantom salt did not follow the key")
	}
	want := phantomCredential([]byte("second"), ScramSHA512, "mallory", nil)
	if got := salt(); got != "s="+base64.StdEncoding.EncodeToString(want.Salt) {
		t.Fatalf("salt %s, want the one PhantomKey %q gives", got, "second")
	}
}
