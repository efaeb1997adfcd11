package state

import (
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
