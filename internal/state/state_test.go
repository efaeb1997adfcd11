package state

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func TestPersistsAcrossReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Open, 0700
	db, err := Open(dir, Options{})
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

	db, err = Open(dir, Options{})
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

// TestBadRecordsAreSkippedNotFatal plants damaged user and token records
// next to good ones: loading returns the good ones and reports each bad one
// (by kind and key, never its content) instead of failing.
func TestBadRecordsAreSkippedNotFatal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Open, 0700
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	if err := db.PutUser("good", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: good}); err != nil {
		t.Fatal(err)
	}
	tok := dtoken.Info{ID: "ABEiM0RVZneImaq7zN3u_w", Owner: dtoken.Principal{Type: "User", Name: "alice"}}
	if err := db.PutToken(tok); err != nil {
		t.Fatal(err)
	}
	emptySalt := "salt=,stored_key=" + strings.Repeat("A", 86) + "==,server_key=" + strings.Repeat("A", 86) + "==,iterations=4096"
	raw := map[string]map[string]string{
		string(bucketUsers): {
			"emptysalt": `{"SCRAM-SHA-512":"` + emptySalt + `"}`,
			"notjson":   `{"SCRAM-SHA-512":`,
			"mixed":     `{"SCRAM-SHA-512":"` + good.StoredForm() + `","SCRAM-SHA-256":"salt=AA=="}`,
		},
		string(bucketTokens): {"broken": `{"token_id":`, "other": `{"token_id":"not-other"}`},
	}
	if err := db.db.Update(func(tx *bolt.Tx) error {
		for b, kv := range raw {
			for k, v := range kv {
				if err := tx.Bucket([]byte(b)).Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var bad []BadRecord
	db, err = Open(dir, Options{OnBadRecord: func(r BadRecord) { bad = append(bad, r) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	users, err := db.LoadUsers()
	if err != nil {
		t.Fatalf("load users: %v", err)
	}
	toks, err := db.LoadTokens()
	if err != nil {
		t.Fatalf("load tokens: %v", err)
	}
	if len(users) != 2 || users["good"] == nil || len(users["mixed"]) != 1 || len(toks) != 1 || toks[0].ID != tok.ID {
		t.Fatalf("loaded users %v, tokens %v", users, toks)
	}
	got := map[string]bool{}
	for _, r := range bad {
		got[r.Kind+"/"+r.Key] = true
		if strings.Contains(r.Err.Error(), "AAAA") || strings.Contains(r.Err.Error(), "token_id") {
			t.Errorf("%s/%s: error quotes the record: %v", r.Kind, r.Key, r.Err)
		}
	}
	for _, want := range []string{"scram_user/emptysalt", "scram_user/notjson", "scram_user/mixed", "delegation_token/broken", "delegation_token/other"} {
		if !got[want] {
			t.Errorf("%s not reported (reported: %v)", want, got)
		}
	}
	if len(bad) != 5 {
		t.Errorf("%d reports, want 5: %+v", len(bad), bad)
	}
}

// TestPutUserRefusesWhatWouldNotLoad: the store itself refuses a credential
// that LoadUsers would skip.
func TestPutUserRefusesWhatWouldNotLoad(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	c.Salt = nil
	if err := db.PutUser("u", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c}); err == nil {
		t.Fatal("empty salt stored")
	}
}

// FuzzLoadRecords plants an arbitrary token record and an arbitrary user
// record in the store, as a damaged or hand-edited state directory would
// hold them, and reads them back the way a start does: LoadUsers,
// LoadTokens, then a token manager over the store that describes, looks up
// and sweeps its tokens. Nothing may panic or fail; a record is either
// loaded (tokens under their own id, credentials that validate) or
// reported to OnBadRecord, and a report never quotes the record.
func FuzzLoadRecords(f *testing.F) {
	var bad []BadRecord
	db, err := Open(filepath.Join(f.TempDir(), "state"), Options{OnBadRecord: func(r BadRecord) { bad = append(bad, r) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	db.db.NoSync = true // a fuzzing scratch store: no fsync per input

	now := time.UnixMilli(1_700_000_000_000)
	good, _ := sasl.DeriveCredential(sasl.ScramSHA256, "pw", []byte("salt"), 4096)
	users, _ := json.Marshal(map[string]string{string(sasl.ScramSHA256): good.StoredForm()})
	tok, _ := json.Marshal(dtoken.Info{ID: "tok1", Owner: dtoken.Principal{Type: "User", Name: "alice"},
		Renewers: []dtoken.Principal{{Type: "User", Name: "bob"}}, Issue: now, Expiry: now.Add(time.Hour), Max: now.Add(24 * time.Hour),
		Credentials: map[sasl.Mechanism]string{sasl.ScramSHA256: good.StoredForm()}, KeyCheck: []byte{1, 2}})
	f.Add("tok1", tok, users)
	f.Add("tok1", []byte(`{"token_id":"tok1","expiry":"1970-01-01T00:00:00Z"}`), []byte(`{"SCRAM-SHA-512":"salt=,iterations=1"}`))
	f.Add("x", []byte(`{"token_id":`), []byte(`{"SCRAM-SHA-512":`))
	f.Add("x", []byte(`null`), []byte(`{"PLAIN":"x","SCRAM-SHA-256":"salt=AA=="}`))
	f.Add("", []byte(`{"token_id":"","owner":{"Type":"","Name":""}}`), []byte(`[]`))

	f.Fuzz(func(t *testing.T, key string, tokenRec, userRec []byte) {
		if key == "" || len(key) > bolt.MaxKeySize {
			return // bbolt refuses such keys: they cannot be stored
		}
		bad = bad[:0]
		put := func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketTokens).Put([]byte(key), tokenRec); err != nil {
				return err
			}
			return tx.Bucket(bucketUsers).Put([]byte(key), userRec)
		}
		if err := db.db.Update(put); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = db.db.Update(func(tx *bolt.Tx) error {
				_ = tx.Bucket(bucketTokens).Delete([]byte(key))
				return tx.Bucket(bucketUsers).Delete([]byte(key))
			})
		})

		loaded, err := db.LoadUsers()
		if err != nil {
			t.Fatal(err)
		}
		for m, c := range loaded[key] {
			if err := c.Validate(m); err != nil {
				t.Fatalf("loaded a %s credential that does not validate: %v", m, err)
			}
		}
		toks, err := db.LoadTokens()
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) > 1 || len(toks) == 1 && toks[0].ID != key {
			t.Fatalf("record %q loaded as %+v", key, toks)
		}
		tokenReported := false
		for _, r := range bad {
			tokenReported = tokenReported || r.Kind == KindToken
			if msg := r.Err.Error(); len(tokenRec) > 8 && strings.Contains(msg, string(tokenRec)) ||
				len(userRec) > 8 && strings.Contains(msg, string(userRec)) {
				t.Fatalf("report quotes the record: %v", r.Err)
			}
		}
		if len(toks) == 0 && !tokenReported {
			t.Fatal("token record neither loaded nor reported")
		}

		m, err := dtoken.New(dtoken.Options{SecretKey: "k", Store: db, SuperUsers: []string{"User:admin"}, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Describe(dtoken.Caller{Principal: dtoken.Principal{Type: "User", Name: "admin"}}, nil); err != nil {
			t.Fatal(err)
		}
		if len(toks) == 1 {
			if _, err := m.LookupToken(context.Background(), sasl.ScramSHA256, key); err != nil && err != sasl.ErrUnknownCredential {
				t.Fatalf("lookup: %v", err)
			}
		}
		if _, err := m.Sweep(); err != nil {
			t.Fatal(err)
		}
	})
}
