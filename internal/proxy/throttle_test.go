package proxy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// sleeps records the waits a server would sleep, and returns at once, or,
// while a gate is set, when the gate opens.
type sleeps struct {
	mu   sync.Mutex
	d    []time.Duration
	gate chan struct{}
}

func (r *sleeps) sleep(ctx context.Context, d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
}

// recorded is the number of waits recorded since the last take.
func (r *sleeps) recorded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.d)
}

// take returns the waits recorded since the last take.
func (r *sleeps) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.d
	r.d = nil
	return d
}

// throttleEnv is a proxy on a stopped test clock whose waits are recorded,
// not slept; bob is a second user.
func throttleEnv(t *testing.T) (*env, *sleeps) {
	e, rec, _ := throttleReauthEnv(t, 0)
	return e, rec
}

// throttleReauthEnv is throttleEnv whose sessions re-authenticate after
// maxReauth (0: never), with its clock.
func throttleReauthEnv(t *testing.T, maxReauth time.Duration) (*env, *sleeps, *testClock) {
	rec := &sleeps{}
	clock := newTestClock()
	e := newEnv(t, func(o *Options) {
		o.Auth = sasl.NewAuthenticator(sasl.Options{Users: testUsersWithBob(t), PhantomKey: []byte("test-phantom-key")})
		o.Now = clock.Now
		o.sleep = rec.sleep
		o.MaxReauth = maxReauth
	})
	return e, rec, clock
}

// failLogin makes one failed v1 login as user and waits for the close.
func failLogin(t *testing.T, e *env, user string) {
	t.Helper()
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, user, "wrong", 1); r.ErrorCode != 58 {
		t.Fatalf("wrong password: %d", r.ErrorCode)
	}
	w.ExpectClosed()
}

// v0Login runs a login on the SaslHandshake v0 raw-token path and reports
// whether it succeeded.
func v0Login(t *testing.T, e *env, user, password string) bool {
	t.Helper()
	w, _ := v0Start(t, e, user, password)
	_, err := w.ReadFrame()
	return err == nil
}

// After failures for a user, an attempt on the v0 raw-token path is held
// like one on the v1 path, before its proof is checked.
func TestLoginThrottleHoldsOnTheV0Path(t *testing.T) {
	e, rec := throttleEnv(t)
	for range 3 {
		failLogin(t, e, testUser)
	}
	rec.take()
	if v0Login(t, e, testUser, "wrong") {
		t.Fatal("a wrong password logged in")
	}
	base := e.srv.opts.FailedAuthDelay
	if got := rec.take(); !slices.ContainsFunc(got, func(d time.Duration) bool { return d >= 4*base }) {
		t.Fatalf("after 3 failures the v0 attempt waited %v, want a hold of at least %v", got, 4*base)
	}
}

// Attempts made in parallel are spaced: each takes the next slot of the
// shared per-key schedule, so no two are checked at the same time, and a
// right password is held like a wrong one (or answering it first would
// tell the attacker which guess was right).
func TestLoginThrottleSpacesParallelAttempts(t *testing.T) {
	e, rec := throttleEnv(t)
	failLogin(t, e, testUser)
	rec.take()
	// Every attempt is held until all of them have asked for their slot.
	gate := make(chan struct{})
	rec.mu.Lock()
	rec.gate = gate
	rec.mu.Unlock()
	const n = 5
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := protocoltest.Dial(t, e.addr, nil)
			w.Login(sasl.ScramSHA512, testUser, testPassword, 1)
		}()
	}
	for i := 0; rec.recorded() < n && i < 500; i++ {
		time.Sleep(10 * time.Millisecond) // wait for a condition, not a timing check
	}
	close(gate)
	wg.Wait()
	got := rec.take()
	slices.Sort(got)
	base := e.srv.opts.FailedAuthDelay
	if len(got) != n {
		t.Fatalf("%d parallel attempts were held %d times (%v), want each held", n, len(got), got)
	}
	for i := range got {
		if got[i] < time.Duration(i+1)*base {
			t.Fatalf("holds %v: attempt %d was not given its own slot (want >= %v)", got, i+1, time.Duration(i+1)*base)
		}
	}
}

// A success clears the user's own count, never the source address's: one
// good login from an address does not reset the guesses made from it.
func TestLoginSuccessClearsOnlyTheUser(t *testing.T) {
	e, _ := throttleEnv(t)
	failLogin(t, e, testUser)
	failLogin(t, e, "bob")
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, "bob", "bob-secret", 1); r.ErrorCode != 0 {
		t.Fatalf("bob: %d", r.ErrorCode)
	}
	w.RoundTrip(kmsg.NewPtrMetadataRequest())
	for k, want := range map[string]int{"ip:127.0.0.1": 2, "user:alice": 1, "user:bob": 0} {
		if n := e.srv.backoff.count(k); n != want {
			t.Errorf("%s: %d failures, want %d", k, n, want)
		}
	}
}

// A flood of distinct user names cannot evict the count of a user under
// attack, nor touch the source addresses' budget.
func TestBackoffFloodOfNamesKeepsOthersCounts(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBackoff(100*time.Millisecond, time.Second, func() time.Time { return now })
	b.limit = 64
	for range 5 {
		b.fail("user:alice", "ip:192.0.2.1")
	}
	for i := range 10000 {
		b.fail(fmt.Sprintf("user:flood-%d", i), "ip:198.51.100.7")
	}
	if n := b.count("user:alice"); n != 5 {
		t.Errorf("alice's count after the flood: %d, want 5", n)
	}
	if n := b.count("ip:192.0.2.1"); n != 5 {
		t.Errorf("the first address's count after the flood: %d, want 5", n)
	}
	if n := b.entries(); n > 2*64 {
		t.Errorf("%d entries kept, want at most %d", n, 2*64)
	}
}

// A re-authentication on an authenticated connection is held by the same
// schedule as a login, right password or not: it cannot be used to guess
// faster than new connections could.
func TestLoginThrottleHoldsReauthentication(t *testing.T) {
	e, rec, clock := throttleReauthEnv(t, time.Hour)
	w := loggedIn(t, e)
	clock.Add(2 * time.Second)
	for range 2 {
		failLogin(t, e, testUser)
	}
	rec.take()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatalf("re-authentication: %d", r.ErrorCode)
	}
	base := e.srv.opts.FailedAuthDelay
	if got := rec.take(); !slices.ContainsFunc(got, func(d time.Duration) bool { return d >= 2*base }) {
		t.Fatalf("after 2 failures the re-authentication waited %v, want a hold of at least %v", got, 2*base)
	}
}
