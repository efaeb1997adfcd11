package credstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func upsert(user string, mech int8, iterations int32) Upsertion {
	return Upsertion{User: user, Mechanism: mech, Iterations: iterations, Salt: []byte("salt"), SaltedPassword: make([]byte, 64)}
}

func TestAlterAndDescribeRules(t *testing.T) {
	file := NewSnapshot()
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	file.Put(sasl.ScramSHA512, "fileuser", c)
	store := NewStore(file)
	a, err := NewAdmin(store, NewMemUsers(), []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	results, err := a.Alter("User:admin",
		[]Deletion{{"dup", 2}, {"ghost", 2}},
		[]Upsertion{upsert("dup", 1, 4096), upsert("", 2, 4096), upsert("badmech", 3, 4096),
			upsert("few", 2, 4095), upsert("many", 2, 16385), upsert("ok", 2, 8192), upsert("fileuser", 2, 4096)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]error{"dup": ErrDuplicateUser, "ghost": ErrNoCredential, "": ErrEmptyUser, "badmech": ErrUnknownMechanism,
		"few": ErrTooFewIterations, "many": ErrTooManyIterations, "ok": nil}
	order := []string{"dup", "ghost", "", "badmech", "few", "many", "ok", "fileuser"}
	if len(results) != len(order) {
		t.Fatalf("%d results, want %d", len(results), len(order))
	}
	for i, r := range results {
		if r.User != order[i] {
			t.Errorf("result %d is %q, want %q (order of first mention)", i, r.User, order[i])
		}
		if w, ok := want[r.User]; ok && r.Err != w {
			t.Errorf("%q: %v, want %v", r.User, r.Err, w)
		}
	}
	var ro *ReadOnlyError
	if !errors.As(results[7].Err, &ro) || ro.User != "fileuser" || ro.Source != SourceFile {
		t.Errorf("fileuser: %v, want read-only (file)", results[7].Err)
	}
	if _, err := store.LookupUser(ctx, sasl.ScramSHA512, "ok"); err != nil {
		t.Fatal("upserted user cannot be looked up")
	}
	results, _ = a.Alter("User:bob", nil, []Upsertion{upsert("zed", 2, 4096), upsert("amy", 2, 4096)})
	if len(results) != 2 || results[0].User != "amy" || results[0].Err != ErrNotSuperUser || results[1].Err != ErrNotSuperUser {
		t.Fatalf("non super user: %+v", results)
	}

	described, err := a.Describe("User:admin", []string{"ok", "ok", "nobody"})
	if err != nil || len(described) != 2 || described[0].Err != ErrDuplicateUser || described[1].Err != ErrNoCredential {
		t.Fatalf("describe: %+v %v", described, err)
	}
	all, _ := a.Describe("User:admin", nil)
	if len(all) != 2 || all[0].User != "fileuser" || all[1].User != "ok" ||
		len(all[1].Credentials) != 1 || all[1].Credentials[0] != (CredentialInfo{sasl.ScramSHA512, 8192}) {
		t.Fatalf("describe all: %+v", all)
	}
	if _, err := a.Describe("User:bob", []string{"ok"}); err != ErrNotSuperUser {
		t.Fatalf("describe by a non super user: %v", err)
	}
}

func TestUpsertionFormatsWithoutTheSaltedPassword(t *testing.T) {
	u := upsert("alice", 2, 4096)
	u.SaltedPassword = []byte("very-secret-salted-password")
	for _, s := range []string{u.String(), fmt.Sprintf("%v", u), fmt.Sprintf("%+v", []Upsertion{u})} {
		if !strings.Contains(s, "alice") || strings.Contains(s, "very-secret") {
			t.Errorf("%q", s)
		}
	}
}
