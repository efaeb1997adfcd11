package dtoken

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unsafe"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// decoded is i as a store that decodes records hands it over: every string
// and slice its own copy, as JSON decoding makes them.
func decoded(t *testing.T, i Info) Info {
	t.Helper()
	b, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	var out Info
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStoredCredentialsSurviveWrites: the cache keeps a token's stored
// credentials parsed, not as its record's strings; a renewal must still
// persist them exactly as Create stored them, and logins must go on with
// them without deriving (no randomness here).
func TestStoredCredentialsSurviveWrites(t *testing.T) {
	c := &clock{time.Now()}
	store := NewMemStore()
	m := newManager(t, "k", store, c)
	out, err := m.Create(alice, "", "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Token.Credentials) != len(sasl.Mechanisms()) {
		t.Fatalf("created with %d stored credentials", len(out.Token.Credentials))
	}
	c.t = c.t.Add(time.Minute)
	if _, err := m.Renew(alice, out.HMAC, time.Hour); err != nil {
		t.Fatal(err)
	}
	recs, _ := store.LoadTokens()
	if len(recs) != 1 || !sameCredentials(recs[0], out.Token) || recs[0].Expiry.Equal(out.Token.Expiry) {
		t.Fatalf("renewal stored %+v, created %+v", recs, out.Token)
	}
	again, err := New(Options{SecretKey: "k", Store: store, Now: c.now, Rand: failingRand{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, mech := range sasl.Mechanisms() {
		if err := tokenLogin(t, again, mech, out.Token.ID, out.HMAC); err != nil {
			t.Fatalf("%s login after the renewal: %v", mech, err)
		}
	}
}

// TestCachedCredentialsDoNotAlias: a token's credentials share one
// allocation in the cache; what a lookup returns must not let a caller
// that appends to one field overwrite another.
func TestCachedCredentialsDoNotAlias(t *testing.T) {
	m := newManager(t, "k", NewMemStore(), &clock{time.Now()})
	out, err := m.Create(alice, "", "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := m.LookupToken(t.Context(), sasl.ScramSHA256, out.Token.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := bytes.Clone(tc.Credential.StoredKey)
	_ = append(tc.Credential.Salt, 0xff, 0xff, 0xff, 0xff)
	if again, _ := m.LookupToken(t.Context(), sasl.ScramSHA256, out.Token.ID); !bytes.Equal(again.Credential.StoredKey, stored) {
		t.Fatal("appending to the salt changed the stored key")
	}
	if err := tokenLogin(t, m, sasl.ScramSHA256, out.Token.ID, out.HMAC); err != nil {
		t.Fatal(err)
	}
}

// TestEntriesShareRepeatedStrings: tokens of one owner, applied from
// separately decoded records, hold one copy of the owner's name, and every
// token one copy of its key's id and fingerprint: with many tokens, those
// are objects the collector would otherwise mark once per token.
func TestEntriesShareRepeatedStrings(t *testing.T) {
	m := newManager(t, "k", NewMemStore(), &clock{time.Now()})
	var ids []string
	for range 2 {
		out, err := m.Create(alice, "", "", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		m.ApplyToken(decoded(t, out.Token))
		ids = append(ids, out.Token.ID)
	}
	a, b := m.byID[ids[0]].info, m.byID[ids[1]].info
	switch {
	case unsafe.StringData(a.Owner.Name) != unsafe.StringData(b.Owner.Name):
		t.Error("each token holds its own copy of the owner's name")
	case unsafe.StringData(a.Requester.Name) != unsafe.StringData(a.Owner.Name):
		t.Error("the requester, the owner here, is a second copy")
	case unsafe.StringData(a.KeyID) != unsafe.StringData(b.KeyID):
		t.Error("each token holds its own copy of the key id")
	case &a.KeyCheck[0] != &b.KeyCheck[0]:
		t.Error("each token holds its own copy of the key fingerprint")
	case a.Credentials != nil:
		t.Error("the cache keeps the record's credential strings besides the parsed credentials")
	}
}

// TestUnparsableStoredCredentialIsDerived: a record whose stored form for a
// mechanism does not parse logs in with a credential derived at first
// login, as a record without one; the other mechanism keeps its stored one.
func TestUnparsableStoredCredentialIsDerived(t *testing.T) {
	m := newManager(t, "k", NewMemStore(), &clock{time.Now()})
	out, err := m.Create(alice, "", "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := decoded(t, out.Token)
	bad.Credentials[sasl.ScramSHA512] = "salt=not base64"
	m.ApplyToken(bad)
	for _, mech := range sasl.Mechanisms() {
		if err := tokenLogin(t, m, mech, out.Token.ID, out.HMAC); err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
	}
	want, _ := sasl.ParseStoredForm(sasl.ScramSHA256, out.Token.Credentials[sasl.ScramSHA256])
	if tc, _ := m.LookupToken(t.Context(), sasl.ScramSHA256, out.Token.ID); !bytes.Equal(tc.Credential.Salt, want.Salt) {
		t.Fatal("the mechanism whose form parsed did not keep its stored credential")
	}
	if got := m.byID[out.Token.ID].record().Credentials; len(got) != 1 || got[sasl.ScramSHA256] != out.Token.Credentials[sasl.ScramSHA256] {
		t.Fatalf("record after a bad form: %v", got)
	}
}
