package credstore

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// tailUsers is a user store shared through a log, reduced to what matters
// to the Admin: every write is fed back through ApplyUser from another
// goroutine (the store's tail) while the writer waits for it. Code that
// held a lock ApplyUser takes across PutUser would deadlock here.
type tailUsers struct {
	*MemUsers
	a         *Admin
	selfApply bool
	failUser  string // PutUser of this user fails
}

var errDown = errors.New("brokers unreachable")

func (s *tailUsers) AppliesWrites() bool { return s.selfApply }

func (s *tailUsers) PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error {
	if user == s.failUser {
		return errDown
	}
	if err := s.MemUsers.PutUser(user, creds); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.a.ApplyUser(user, copyCreds(creds))
	}()
	<-done
	return nil
}

// alterWithin runs Alter and fails the test if it has not returned within
// a minute: blocked that long, it is deadlocked with the store's tail.
func alterWithin(t *testing.T, a *Admin, deletions []Deletion, upsertions []Upsertion) ([]UserResult, error) {
	t.Helper()
	type result struct {
		r   []UserResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := a.Alter("User:admin", deletions, upsertions)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		return r.r, r.err
	case <-time.After(time.Minute):
		t.Fatal("Alter still blocked after a minute; it holds a lock the store's tail needs")
		return nil, nil
	}
}

// TestAlterDoesNotHoldTheApplyLockAcrossTheStore: Alter completes while
// the store applies each write from another goroutine before PutUser
// returns, and the layer ends as the store says.
func TestAlterDoesNotHoldTheApplyLockAcrossTheStore(t *testing.T) {
	for _, selfApply := range []bool{true, false} {
		store := NewStore(nil)
		persist := &tailUsers{MemUsers: NewMemUsers(), selfApply: selfApply}
		a, err := NewAdmin(store, persist, []string{"User:admin"})
		if err != nil {
			t.Fatal(err)
		}
		persist.a = a
		results, err := alterWithin(t, a, nil, []Upsertion{upsert("amy", 1, 4096), upsert("bea", 2, 8192)})
		if err != nil || len(results) != 2 || results[0].Err != nil || results[1].Err != nil {
			t.Fatalf("upserts: %+v %v", results, err)
		}
		results, err = alterWithin(t, a, []Deletion{{"amy", 1}}, []Upsertion{upsert("cal", 2, 4096)})
		if err != nil || len(results) != 2 || results[0].Err != nil || results[1].Err != nil {
			t.Fatalf("delete and upsert: %+v %v", results, err)
		}
		stored, _ := persist.LoadUsers()
		if got := store.AllUsers(); len(got) != 2 || got[0] != "bea" || got[1] != "cal" || len(stored) != 2 {
			t.Fatalf("selfApply=%v: layer %v, store %v", selfApply, got, stored)
		}
	}
}

// TestFailedAlterIsNeverHalfApplied: when the store refuses one user's
// write, the users written before it are stored and shown, that user and
// those after it are neither.
func TestFailedAlterIsNeverHalfApplied(t *testing.T) {
	store := NewStore(nil)
	persist := &tailUsers{MemUsers: NewMemUsers(), selfApply: true, failUser: "bea"}
	a, err := NewAdmin(store, persist, []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	persist.a = a
	_, err = alterWithin(t, a, nil, []Upsertion{upsert("amy", 2, 4096), upsert("bea", 2, 4096), upsert("cal", 2, 4096)})
	if !errors.Is(err, errDown) {
		t.Fatalf("Alter: %v, want the store's error", err)
	}
	stored, _ := persist.LoadUsers()
	if got := store.AllUsers(); len(got) != 1 || got[0] != "amy" || len(stored) != 1 || stored["amy"] == nil {
		t.Fatalf("layer %v, store %v; want amy only in both", got, stored)
	}
}

// TestApplyUser: applying replaces every credential of the user, again
// changes nothing, and empty credentials remove the user.
func TestApplyUser(t *testing.T) {
	store := NewStore(nil)
	a, err := NewAdmin(store, NewMemUsers(), []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	c256, _ := sasl.DeriveCredential(sasl.ScramSHA256, "pw", []byte("salt"), 4096)
	c512, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	a.ApplyUser("amy", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA256: c256, sasl.ScramSHA512: c512})
	a.ApplyUser("amy", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c512})
	a.ApplyUser("amy", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c512})
	ctx := context.Background()
	if _, err := store.LookupUser(ctx, sasl.ScramSHA256, "amy"); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatalf("a mechanism the newer record dropped still logs in: %v", err)
	}
	if _, err := store.LookupUser(ctx, sasl.ScramSHA512, "amy"); err != nil {
		t.Fatal(err)
	}
	a.ApplyUser("amy", nil)
	a.ApplyUser("amy", nil)
	a.ApplyUser("nobody", map[sasl.Mechanism]sasl.Credential{})
	if n := store.Users(); n != 0 {
		t.Fatalf("%d users after deleting the only one", n)
	}
}

// TestReplaceUserKeepsTheShapesOfAFullRecount: after any sequence of
// one-user changes to the API layer, with some of the users also defined
// (and so owned) by the file layer, lookups, ownership and the phantom
// shape population are those of a store built from scratch from the same
// layers.
func TestReplaceUserKeepsTheShapesOfAFullRecount(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	shapes := []sasl.Credential{
		cheapCred([]byte("0123456789abcdefghijklmnopqrstuv"), 4096),
		cheapCred([]byte("short-salt"), 8192),
		cheapCred(kafkaToolSalt(t), 4096),
		cheapCred(kafkaToolSalt(t), 4000), // below MinIterations: not counted
	}
	file := NewSnapshot()
	for i := range 20 {
		file.Put(sasl.ScramSHA512, fmt.Sprintf("user%d", i*5), shapes[i%3]) // every 5th user is the file's
	}
	store := NewStore(file)
	a, err := NewAdmin(store, NewMemUsers(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 2000 {
		user := fmt.Sprintf("user%d", rng.IntN(100))
		creds := map[sasl.Mechanism]sasl.Credential{}
		for _, m := range sasl.Mechanisms() {
			if rng.IntN(3) > 0 {
				creds[m] = shapes[rng.IntN(len(shapes))]
			}
		}
		a.ApplyUser(user, creds)
		if step%100 != 99 {
			continue
		}
		fresh := NewStore(store.Snapshot(SourceFile))
		fresh.ReplaceSource(SourceAPI, store.Snapshot(SourceAPI))
		for _, m := range sasl.Mechanisms() {
			if got, want := store.PhantomShapes(m), fresh.PhantomShapes(m); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d, %s: shapes %v, a recount gives %v", step, m, got, want)
			}
		}
		if got, want := store.AllUsers(), fresh.AllUsers(); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: users %v, want %v", step, got, want)
		}
		for i := range 100 {
			u := fmt.Sprintf("user%d", i)
			if got, want := store.Credentials(u), fresh.Credentials(u); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: %s has %v, want %v", step, u, got, want)
			}
		}
	}
	if n := len(store.PhantomShapes(sasl.ScramSHA512)); n != 3 {
		t.Fatalf("%d shapes counted, want the 3 at or above the minimum iterations", n)
	}
}
