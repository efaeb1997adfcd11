package state

import (
	"bytes"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_700_000_000_000).UTC()
	tok := dtoken.Info{ID: "ABEiM0RVZneImaq7zN3u_w", Owner: dtoken.Principal{Type: "User", Name: "alice"},
		Requester: dtoken.Principal{Type: "User", Name: "alice"}, Issue: now, Expiry: now.Add(time.Hour), Max: now.Add(2 * time.Hour)}
	if err := db.PutToken(tok); err != nil {
		t.Fatal(err)
	}
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	if err := db.PutUser("bob", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c}); err != nil {
		t.Fatal(err)
	}
	secret, _ := db.Secret("phantom")
	db.Close()

	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	toks, err := db.LoadTokens()
	if err != nil || len(toks) != 1 || toks[0].ID != tok.ID || !toks[0].Expiry.Equal(tok.Expiry) {
		t.Fatalf("%+v %v", toks, err)
	}
	users, err := db.LoadUsers()
	if err != nil || users["bob"][sasl.ScramSHA512].StoredForm() != c.StoredForm() {
		t.Fatalf("%v %v", users, err)
	}
	again, _ := db.Secret("phantom")
	if len(secret) != 32 || !bytes.Equal(secret, again) {
		t.Fatal("secret not stable")
	}
	if err := db.PutUser("bob", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteToken(tok.ID); err != nil {
		t.Fatal(err)
	}
	users, _ = db.LoadUsers()
	toks, _ = db.LoadTokens()
	if len(users) != 0 || len(toks) != 0 {
		t.Fatal("delete did not persist")
	}
}
