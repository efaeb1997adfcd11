package state

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// filledStore opens a new state.dir holding two users, two tokens issued
// by a token manager, and the phantom secret.
func filledStore(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "state"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := db.PutUser(u, credsFor(t, u+"-password")); err != nil {
			t.Fatal(err)
		}
	}
	m, err := dtoken.New(dtoken.Options{SecretKey: "copy-key", Store: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"alice", "bob"} {
		if _, err := m.Create(dtoken.Caller{Principal: dtoken.Principal{Type: "User", Name: owner}}, "", "", nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Secret("phantom_scram"); err != nil {
		t.Fatal(err)
	}
	return db
}

func credsFor(t *testing.T, password string) map[sasl.Mechanism]sasl.Credential {
	t.Helper()
	c, err := sasl.DeriveCredential(sasl.ScramSHA512, password, []byte("copy-test-salt-"+password), 4096)
	if err != nil {
		t.Fatal(err)
	}
	return map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c}
}

func emptyStore(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "state"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sameState fails unless a and b hold the same users, tokens and secrets.
func sameState(t *testing.T, a, b CopySource) {
	t.Helper()
	sa, err := snapshot(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := snapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sa.secrets, sb.secrets) {
		t.Error("the secrets differ")
	}
	if len(sa.users) != len(sb.users) {
		t.Errorf("%d users, want %d", len(sb.users), len(sa.users))
	}
	for u, c := range sa.users {
		if !sameCredentials(c, sb.users[u]) {
			t.Errorf("user %s differs", u)
		}
	}
	if len(sa.tokens) != len(sb.tokens) {
		t.Errorf("%d tokens, want %d", len(sb.tokens), len(sa.tokens))
	}
	for id, tok := range sa.tokens {
		if !bytes.Equal(tok.json, sb.tokens[id].json) {
			t.Errorf("token %s differs", id)
		}
	}
}

// lastTx is the id of the database's last write transaction: a copy that
// leaves it unchanged wrote nothing.
func lastTx(t *testing.T, d *DB) int {
	t.Helper()
	var id int
	if err := d.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCopyIntoEmptyThenAgainWritesNothing(t *testing.T) {
	src, dst := filledStore(t), emptyStore(t)
	r, err := Copy(src, dst, CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Copied[CopyUser]) != 2 || len(r.Copied[CopyToken]) != 2 || len(r.Copied[CopySecret]) != 1 || r.Written() != 5 {
		t.Fatalf("first copy: %+v", r)
	}
	sameState(t, src, dst)

	// The destination's token manager knows the copied tokens.
	m, err := dtoken.New(dtoken.Options{SecretKey: "copy-key", Store: dst})
	if err != nil || m.Len() != 2 {
		t.Fatalf("a token manager on the copy holds %d tokens (%v), want 2", m.Len(), err)
	}

	before := lastTx(t, dst)
	r, err = Copy(src, dst, CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Written() != 0 || r.Unchanged[CopyUser] != 2 || r.Unchanged[CopyToken] != 2 || r.Unchanged[CopySecret] != 1 {
		t.Fatalf("second copy: %+v", r)
	}
	if after := lastTx(t, dst); after != before {
		t.Fatalf("the second copy wrote to the destination (transaction %d -> %d)", before, after)
	}
}

func TestCopyConflictWritesNothingUnlessOverwrite(t *testing.T) {
	src, dst := filledStore(t), emptyStore(t)
	// The destination has another alice, and a user of its own.
	if err := dst.PutUser("alice", credsFor(t, "another-password")); err != nil {
		t.Fatal(err)
	}
	if err := dst.PutUser("carol", credsFor(t, "carol-password")); err != nil {
		t.Fatal(err)
	}
	before := lastTx(t, dst)
	r, err := Copy(src, dst, CopyOptions{})
	if !errors.Is(err, ErrCopyConflicts) {
		t.Fatalf("copy over a different alice: %v, want ErrCopyConflicts", err)
	}
	if !reflect.DeepEqual(r.Conflicts[CopyUser], []string{"alice"}) {
		t.Fatalf("conflicts %v, want alice", r.Conflicts)
	}
	if after := lastTx(t, dst); after != before {
		t.Fatal("a copy with a conflict wrote records")
	}

	r, err = Copy(src, dst, CopyOptions{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Replaced[CopyUser], []string{"alice"}) || len(r.Copied[CopyUser]) != 1 {
		t.Fatalf("overwrite: %+v", r)
	}
	users, err := dst.LoadUsers()
	if err != nil {
		t.Fatal(err)
	}
	srcUsers, _ := src.LoadUsers()
	if !sameCredentials(users["alice"], srcUsers["alice"]) {
		t.Error("alice was not replaced by the source's")
	}
	if _, ok := users["carol"]; !ok {
		t.Error("the destination's own user carol was removed")
	}
}

func TestCopyDryRunWritesNothing(t *testing.T) {
	src, dst := filledStore(t), emptyStore(t)
	before := lastTx(t, dst)
	r, err := Copy(src, dst, CopyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Written() != 5 {
		t.Fatalf("dry run plans %d writes, want 5", r.Written())
	}
	if lastTx(t, dst) != before {
		t.Fatal("a dry run wrote")
	}
}

// TestCopyFromInspectedStore: a stopped proxy's state.dir is read through
// Inspect; a secret it never stored is not invented and copied.
func TestCopyFromInspectedStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser("alice", credsFor(t, "alice-password")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	src, err := Inspect(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := emptyStore(t)
	r, err := Copy(src, dst, CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Copied[CopyUser]) != 1 || len(r.Copied[CopySecret]) != 0 {
		t.Fatalf("copy: %+v", r)
	}
	secrets, err := dst.StoredSecrets()
	if err != nil || len(secrets) != 0 {
		t.Fatalf("the destination holds secrets %v (%v); the source stored none", len(secrets), err)
	}
}
