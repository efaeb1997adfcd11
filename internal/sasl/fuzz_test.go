package sasl

import (
	"context"
	"strings"
	"testing"
)

func FuzzParseClientFirst(f *testing.F) {
	for _, s := range []string{tokFirst, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "n,a=a,n=a,r=b", "n,,m=x,n=a=2C,r=b,k=v", "y,,n=a,r=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := ParseClientFirst(msg)
		if err != nil {
			return
		}
		if cf.Username == "" || cf.Nonce == "" || !strings.HasPrefix(msg, "n,") || cf.GS2Header+cf.Bare != msg {
			t.Fatalf("inconsistent parse of %q: %+v", msg, cf)
		}
		if strings.Contains(cf.Nonce, ",") {
			t.Fatalf("nonce with comma: %q", cf.Nonce)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	for _, s := range []string{tokFinal, "c=biws,r=a,p=", "c=,r=a,x=y,p=AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := ParseClientFinal(msg)
		if err != nil {
			return
		}
		if !strings.HasPrefix(msg, cf.WithoutProof+",p=") || cf.Nonce == "" {
			t.Fatalf("inconsistent parse of %q: %+v", msg, cf)
		}
	})
}

func FuzzParseStoredForm(f *testing.F) {
	f.Add(token512)
	f.Add(token256)
	f.Add("salt=,stored_key=,server_key=,iterations=1")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range []Mechanism{"", ScramSHA256, ScramSHA512} {
			c, err := ParseStoredForm(m, s)
			if err != nil {
				continue
			}
			again, err := ParseStoredForm(m, c.StoredForm())
			if err != nil || again.StoredForm() != c.StoredForm() {
				t.Fatalf("%q does not round-trip: %v", s, err)
			}
		}
	})
}

// FuzzConversation drives a full exchange with arbitrary messages: it must
// never panic, and it may only succeed with the real client proof.
func FuzzConversation(f *testing.F) {
	f.Add(tokFirst, tokFinal)
	f.Add("n,,n=alice,r=abc", "c=biws,r=abcsrv,p=AAAA")
	cred, _ := DeriveCredential(ScramSHA512, "pw", []byte("salt"), 4096)
	a := NewAuthenticator(Options{Users: lookups{users: map[string]Credential{"SCRAM-SHA-512/alice": cred}},
		nonce: fixedNonce("srv")})
	f.Fuzz(func(t *testing.T, first, final string) {
		conv, _ := a.Start(context.Background(), ScramSHA512)
		if _, err := conv.Step([]byte(first)); err != nil {
			return
		}
		if _, err := conv.Step([]byte(final)); err == nil {
			t.Fatalf("fuzzed proof accepted: %q %q", first, final)
		}
	})
}
