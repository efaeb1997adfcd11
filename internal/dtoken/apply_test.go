package dtoken

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// tailStore is a store shared through a log, reduced to what matters to
// the Manager: every write is fed back through ApplyToken or ForgetToken
// from another goroutine (the store's tail) while the writer waits for it,
// as the Kafka-topic backend does when it reads its own record back. On
// code that calls the store under the cache lock, that deadlocks.
type tailStore struct {
	*MemStore
	m          *Manager
	selfApply  bool  // AppliesWrites' answer
	failWrites error // when set, writes fail before reaching the log
}

func (s *tailStore) AppliesWrites() bool { return s.selfApply }

func (s *tailStore) tail(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (s *tailStore) PutToken(i Info) error {
	if s.failWrites != nil {
		return s.failWrites
	}
	if err := s.MemStore.PutToken(i); err != nil {
		return err
	}
	s.tail(func() { s.m.ApplyToken(i) })
	return nil
}

func (s *tailStore) DeleteToken(id string) error {
	if s.failWrites != nil {
		return s.failWrites
	}
	if err := s.MemStore.DeleteToken(id); err != nil {
		return err
	}
	s.tail(func() { s.m.ForgetToken(id) })
	return nil
}

// within fails the test if f does not return within a minute: a writer
// blocked that long is deadlocked with the store's tail, not slow.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s: still blocked after a minute; the writer holds a lock the store's tail needs", what)
	}
}

// TestWritersDoNotHoldTheCacheLockAcrossTheStore: every writer completes
// while the store applies the write from another goroutine before it
// returns, whether or not the store says it applies writes itself, and the
// cache ends as the store says.
func TestWritersDoNotHoldTheCacheLockAcrossTheStore(t *testing.T) {
	for _, selfApply := range []bool{true, false} {
		c := &clock{time.UnixMilli(1_700_000_000_000)}
		store := &tailStore{MemStore: NewMemStore(), selfApply: selfApply}
		m := newManager(t, "k", store, c)
		store.m = m
		var keep, gone Created
		within(t, "create", func() {
			var err error
			if keep, err = m.Create(alice, "", "", nil, 0); err != nil {
				t.Error(err)
			}
			if gone, err = m.Create(alice, "", "", nil, 0); err != nil {
				t.Error(err)
			}
			if _, err = m.Create(alice, "", "", nil, time.Minute); err != nil {
				t.Error(err)
			}
		})
		if t.Failed() {
			t.FailNow()
		}
		within(t, "renew", func() {
			if _, err := m.Renew(alice, keep.HMAC, time.Hour); err != nil {
				t.Error(err)
			}
		})
		within(t, "expire", func() {
			if _, err := m.Expire(alice, gone.HMAC, -1); err != nil {
				t.Error(err)
			}
		})
		c.t = c.t.Add(2 * time.Minute)
		within(t, "sweep", func() {
			if n, err := m.Sweep(); n != 1 || err != nil {
				t.Errorf("sweep removed %d: %v", n, err)
			}
		})
		got, _ := m.Describe(alice, nil)
		if len(got) != 1 || got[0].Info.ID != keep.Token.ID || !got[0].Info.Expiry.Equal(c.t.Add(-2*time.Minute).Add(time.Hour)) {
			t.Fatalf("selfApply=%v: cache after the writes: %+v", selfApply, got)
		}
		stored, _ := store.MemStore.LoadTokens()
		if len(stored) != 1 || !sameRecord(stored[0], m.byID[got[0].Info.ID].record()) {
			t.Fatalf("selfApply=%v: store %+v, cache %+v", selfApply, stored, got[0].Info)
		}

	}
}

func sameRecord(a, b Info) bool {
	return a.ID == b.ID && a.Expiry.Equal(b.Expiry) && a.Max.Equal(b.Max) && a.Owner == b.Owner && sameCredentials(a, b)
}

// sameCredentials reports whether two records of one token carry the same
// key and stored credentials.
func sameCredentials(a, b Info) bool {
	if a.KeyID != b.KeyID || !bytes.Equal(a.KeyCheck, b.KeyCheck) || len(a.Credentials) != len(b.Credentials) {
		return false
	}
	for mech, form := range a.Credentials {
		if b.Credentials[mech] != form {
			return false
		}
	}
	return true
}

// TestOwnerLimitHoldsUnderParallelCreates: creates racing each other, with
// the store applying from its tail, never overshoot MaxPerOwner.
func TestOwnerLimitHoldsUnderParallelCreates(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	store := &tailStore{MemStore: NewMemStore(), selfApply: true}
	m, err := New(Options{SecretKey: "k", Store: store, Now: c.now, MaxPerOwner: 3})
	if err != nil {
		t.Fatal(err)
	}
	store.m = m
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for range 8 {
		wg.Go(func() {
			_, err := m.Create(alice, "", "", nil, 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrTooManyTokens):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	within(t, "parallel creates", wg.Wait)
	if ok != 3 || refused != 5 || m.Len() != 3 {
		t.Fatalf("%d created, %d refused, %d cached; want 3, 5, 3", ok, refused, m.Len())
	}
}

// TestFailedWritesChangeNothing: a write the store refuses leaves the cache
// as it was (never half-applied), and its error is the store's.
func TestFailedWritesChangeNothing(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	store := &tailStore{MemStore: NewMemStore(), selfApply: true}
	m := newManager(t, "k", store, c)
	store.m = m
	out, err := m.Create(alice, "", "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("brokers unreachable")
	store.failWrites = down
	if _, err := m.Create(alice, "", "", nil, 0); !errors.Is(err, down) {
		t.Fatalf("create: %v", err)
	}
	if _, err := m.Renew(alice, out.HMAC, time.Hour); !errors.Is(err, down) {
		t.Fatalf("renew: %v", err)
	}
	if _, err := m.Expire(alice, out.HMAC, -1); !errors.Is(err, down) {
		t.Fatalf("expire: %v", err)
	}
	c.t = out.Token.Max.Add(time.Second)
	if n, err := m.Sweep(); n != 0 || !errors.Is(err, down) {
		t.Fatalf("sweep: %d %v", n, err)
	}
	got, _ := m.Describe(alice, nil)
	if m.Len() != 1 || len(got) != 1 || !got[0].Info.Expiry.Equal(out.Token.Expiry) {
		t.Fatalf("cache changed by refused writes: %d tokens, %+v", m.Len(), got)
	}
}

// TestApplyAndForgetAreIdempotent: applying a record twice, replacing a
// token by a newer record (another owner, another expiry) and forgetting
// an unknown id leave the indexes consistent.
func TestApplyAndForgetAreIdempotent(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	src := newManager(t, "k", NewMemStore(), c)
	out, err := src.Create(alice, "", "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, "k", NewMemStore(), c)
	m.ApplyToken(out.Token)
	m.ApplyToken(out.Token)
	m.ForgetToken("no-such-token")
	if m.Len() != 1 {
		t.Fatalf("%d tokens after applying one twice", m.Len())
	}
	if err := tokenLogin(t, m, sasl.ScramSHA256, out.Token.ID, out.HMAC); err != nil {
		t.Fatalf("login with an applied token: %v", err)
	}
	moved := out.Token
	moved.Owner = bob.Principal
	moved.Expiry = moved.Expiry.Add(time.Hour)
	m.ApplyToken(moved)
	if m.live(alice.Principal, c.t) != 0 || m.live(bob.Principal, c.t) != 1 {
		t.Fatalf("owner counts after the token moved from alice to bob: %d, %d", m.live(alice.Principal, c.t), m.live(bob.Principal, c.t))
	}
	got, _ := m.Describe(bob, nil)
	if len(got) != 1 || !got[0].Info.Expiry.Equal(moved.Expiry) {
		t.Fatalf("bob's view: %+v", got)
	}
	if _, err := m.Renew(bob, out.HMAC, 0); err != nil {
		t.Fatalf("renew by hmac after a replace: %v", err)
	}
	m.ForgetToken(out.Token.ID)
	m.ForgetToken(out.Token.ID)
	if _, err := m.Renew(bob, out.HMAC, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("renew after forget: %v", err)
	}
	if err := tokenLogin(t, m, sasl.ScramSHA256, out.Token.ID, out.HMAC); err == nil {
		t.Fatal("a forgotten token logs in")
	}
	if m.Len() != 0 || len(m.byOwner) != 0 || len(m.byHMAC) != 0 {
		t.Fatalf("indexes not empty: %d %d %d", m.Len(), len(m.byOwner), len(m.byHMAC))
	}
}

// renewingStore applies, from its tail, a renewal of every other token
// (made by another proxy) while the first deletion is under way.
type renewingStore struct {
	*tailStore
	renewed []Info
	once    sync.Once
}

func (s *renewingStore) DeleteToken(id string) error {
	s.once.Do(func() {
		for _, i := range s.renewed {
			if i.ID != id {
				s.tail(func() { s.m.ApplyToken(i) })
			}
		}
	})
	return s.tailStore.DeleteToken(id)
}

// TestSweepSparesATokenRenewedMeanwhile: a sweep deletes only tokens that
// are still expired when their turn comes, not one another proxy renewed
// after the sweep listed it.
func TestSweepSparesATokenRenewedMeanwhile(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	store := &renewingStore{tailStore: &tailStore{MemStore: NewMemStore(), selfApply: true}}
	m := newManager(t, "k", store, c)
	store.m = m
	for range 3 {
		out, err := m.Create(alice, "", "", nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := out.Token
		r.Max, r.Expiry = r.Max.Add(time.Hour), r.Expiry.Add(time.Hour)
		store.renewed = append(store.renewed, r)
	}
	c.t = c.t.Add(2 * time.Minute)
	if n, err := m.Sweep(); n != 1 || err != nil {
		t.Fatalf("sweep removed %d (%v), want 1: the other two were renewed while it ran", n, err)
	}
	if m.Len() != 2 {
		t.Fatalf("%d tokens left, want the 2 renewed", m.Len())
	}
}

// TestConcurrentFirstLoginsShareOneCredential: logins racing for a token
// whose record carries no stored credential (an older version's) derive it
// once: every lookup sees the same salt, as a client retrying would.
func TestConcurrentFirstLoginsShareOneCredential(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m := newManager(t, "k", NewMemStore(), c)
	out, err := m.Create(alice, "", "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := out.Token
	old.Credentials, old.KeyCheck = nil, nil
	m.ApplyToken(old)
	salts := make([]string, 8)
	var wg sync.WaitGroup
	for g := range salts {
		wg.Go(func() {
			tc, err := m.LookupToken(t.Context(), sasl.ScramSHA512, old.ID)
			if err != nil {
				t.Error(err)
				return
			}
			salts[g] = string(tc.Credential.Salt)
		})
	}
	wg.Wait()
	for _, s := range salts {
		if s == "" || s != salts[0] {
			t.Fatalf("first logins derived different credentials: %q", salts)
		}
	}
	if err := tokenLogin(t, m, sasl.ScramSHA512, old.ID, out.HMAC); err != nil {
		t.Fatalf("login with the derived credential: %v", err)
	}
}
