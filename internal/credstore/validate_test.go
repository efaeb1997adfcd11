package credstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
)

// TestAlterRefusesWhatWouldNotLoad writes an empty salt through
// AlterUserScramCredentials into a real state store: the write must be
// refused (InvalidCredentialError, UNACCEPTABLE_CREDENTIAL on the wire), and
// the store must open again (it used to accept the record and then refuse
// to start on "empty salt").
func TestAlterRefusesWhatWouldNotLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Open, 0700
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := credstore.NewAdmin(credstore.NewStore(nil), db, []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	var ups []credstore.Upsertion
	for _, salt := range [][]byte{nil, []byte("good-salt")} {
		u := credstore.Upsertion{User: "empty", Mechanism: 2, Iterations: 4096, Salt: salt, SaltedPassword: make([]byte, 64)}
		if salt != nil {
			u.User = "fine"
		}
		ups = append(ups, u)
	}
	results, err := a.Alter("User:admin", nil, ups)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		var invalid *credstore.InvalidCredentialError
		if refused := errors.As(r.Err, &invalid); refused != (r.User == "empty") {
			t.Errorf("user %q: %v", r.User, r.Err)
		}
	}
	db.Close()

	db, err = state.Open(dir, state.Options{OnBadRecord: func(r state.BadRecord) { t.Errorf("bad record %+v", r) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := credstore.NewStore(nil)
	if _, err := credstore.NewAdmin(store, db, nil); err != nil {
		t.Fatalf("reopening the state after the write: %v", err)
	}
	if _, err := store.LookupUser(context.Background(), sasl.ScramSHA512, "fine"); err != nil {
		t.Fatalf("the valid user did not load: %v", err)
	}
	if _, err := store.LookupUser(context.Background(), sasl.ScramSHA512, "empty"); err == nil {
		t.Fatal("the refused user was stored")
	}
}
