package sasl

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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
			ref, refErr := referenceParseStoredForm(m, s)
			if fmt.Sprint(err) != fmt.Sprint(refErr) || !sameBytes(c.Salt, ref.Salt) ||
				!sameBytes(c.StoredKey, ref.StoredKey) || !sameBytes(c.ServerKey, ref.ServerKey) || c.Iterations != ref.Iterations {
				t.Fatalf("%s %q: parsed as %v (%v), the reference parse gives %v (%v)", m, s, c, err, ref, refErr)
			}
			if err != nil {
				continue
			}
			for _, b := range [][]byte{c.Salt, c.StoredKey, c.ServerKey} {
				if cap(b) != len(b) {
					t.Fatalf("%q: a field of %d bytes has capacity %d", s, len(b), cap(b))
				}
			}
			again, err := ParseStoredForm(m, c.StoredForm())
			if err != nil || again.StoredForm() != c.StoredForm() {
				t.Fatalf("%q does not round-trip: %v", s, err)
			}
		}
	})
}

// sameBytes is bytes.Equal that also tells nil from empty.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }

// referenceParseStoredForm is the plain reading of the stored form (split,
// a set of keys seen, a base64 decode per value) that ParseStoredForm,
// written to allocate once, must agree with on every input, errors
// included.
func referenceParseStoredForm(m Mechanism, s string) (Credential, error) {
	var c Credential
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Credential{}, fmt.Errorf("%w: field %d without '='", ErrBadStoredForm, i+1)
		}
		switch k {
		case "salt", "stored_key", "server_key", "iterations":
		default:
			return Credential{}, fmt.Errorf("%w: field %d has an unknown key (want salt, stored_key, server_key, iterations)", ErrBadStoredForm, i+1)
		}
		if seen[k] {
			return Credential{}, fmt.Errorf("%w: duplicate key %q", ErrBadStoredForm, k)
		}
		seen[k] = true
		var err error
		switch k {
		case "salt":
			c.Salt, err = base64.StdEncoding.Strict().DecodeString(v)
		case "stored_key":
			c.StoredKey, err = base64.StdEncoding.Strict().DecodeString(v)
		case "server_key":
			c.ServerKey, err = base64.StdEncoding.Strict().DecodeString(v)
		case "iterations":
			c.Iterations, err = strconv.Atoi(v)
			if err == nil && c.Iterations <= 0 {
				err = errors.New("not positive")
			}
		}
		if err != nil {
			return Credential{}, fmt.Errorf("%w: bad value for %s", ErrBadStoredForm, k)
		}
	}
	for _, k := range []string{"salt", "stored_key", "server_key", "iterations"} {
		if !seen[k] {
			return Credential{}, fmt.Errorf("%w: missing key %q", ErrBadStoredForm, k)
		}
	}
	if err := c.Validate(m); err != nil {
		return Credential{}, err
	}
	return c, nil
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

// BenchmarkParseStoredForm parses a SCRAM-SHA-512 credential (what the
// token cache does at each token's first login); compare allocs/op with
// the reference parse's.
func BenchmarkParseStoredForm(b *testing.B) {
	for _, p := range []struct {
		name  string
		parse func(Mechanism, string) (Credential, error)
	}{{"ParseStoredForm", ParseStoredForm}, {"reference", referenceParseStoredForm}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := p.parse(ScramSHA512, token512); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
