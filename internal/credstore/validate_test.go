package credstore_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
)

// TestAlterRefusesWhatWouldNotLoad writes an empty salt through
// AlterUserScramCredentials into a real state store: the write must be
// refused with UNACCEPTABLE_CREDENTIAL, and the store must open again (it
// used to accept the record and then refuse to start on "empty salt").
func TestAlterRefusesWhatWouldNotLoad(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := credstore.NewAdmin(credstore.NewStore(nil), db, []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, salt := range [][]byte{nil, []byte("good-salt")} {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations = "empty", 2, 4096
		if salt != nil {
			u.Name = "fine"
		}
		u.Salt, u.SaltedPassword = salt, make([]byte, 64)
		req.Upsertions = append(req.Upsertions, u)
	}
	resp, err := a.Handle(context.Background(), "User:admin", false, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results {
		want := int16(0)
		if r.User == "empty" {
			want = kerr.UnacceptableCredential.Code
		}
		if r.ErrorCode != want {
			t.Errorf("user %q: error %d, want %d", r.User, r.ErrorCode, want)
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
