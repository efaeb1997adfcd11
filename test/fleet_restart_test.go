package test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// stateDigestMetric is the state backend's digest of what it holds (users,
// tokens, secrets), the same at every proxy that has read the same records.
const stateDigestMetric = "scram_proxy_state_digest"

// restoreBacklog is how many users the topic holds before the restart, so
// that restoring them takes a while.
const restoreBacklog = 300

// TestFleetRestartRestoresBeforeReady is issue 19's acceptance 2: proxy 2
// restarts while proxy 0 keeps adding users. From its launch on, every
// login through proxy 2 either does not get an answer or succeeds as the
// last user written before the launch: it serves no client on partial
// state. When /readyz first says ready, that user logs in at once and the
// proxy has applied the topic up to the end it had at the launch. After
// the writer stops, the three proxies hold the same users and tokens (by
// admin describe, and by the state digest on /metrics).
func TestFleetRestartRestoresBeforeReady(t *testing.T) {
	f := startStateFleet(t, stateFleetOptions{})
	ctx := ctxT(t, 4*time.Minute)
	adm := adminVia(t, f.proxies[0], "admin")

	// The backlog: users whose passwords nobody needs, 50 per request.
	for n := 0; n < restoreBacklog; n += 50 {
		var up []kadm.UpsertSCRAM
		for i := n; i < n+50; i++ {
			salted := make([]byte, 64)
			_, _ = rand.Read(salted)
			up = append(up, kadm.UpsertSCRAM{User: "backlog-" + strconv.Itoa(i), Mechanism: kadm.ScramSha512,
				Iterations: 4096, Salt: []byte("backlog-salt"), SaltedPassword: salted})
		}
		res, err := adm.AlterUserSCRAMs(ctx, nil, up)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("backlog: %v", err)
		}
	}

	w := startWriter(t, f)
	time.Sleep(300 * time.Millisecond) // the writer is under way
	r := f.proxies[2]
	r.interrupt(t)
	time.Sleep(200 * time.Millisecond) // writes go on while it is down
	last := w.lastWritten(t)
	ends, err := kadm.NewClient(f.directClient(t)).ListEndOffsets(ctx, f.Topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offset of %s: %v %v", f.Topic, err, ends.Error())
	}
	end, _ := ends.Lookup(f.Topic, 0)
	r.launch(t)
	launched := time.Now()
	lastMech := scram.Auth{User: last, Pass: writerPassword}.AsSha512Mechanism()
	tlsCfg := r.clientTLS(t)

	// Logins as last from launch on: none may be refused.
	stop := make(chan struct{})
	var prober sync.WaitGroup
	var early []error
	var firstLogin atomic.Int64 // since launch; 0 until a login succeeded
	prober.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := saslLogin(r.Addr, tlsCfg, lastMech)
			if err == nil {
				firstLogin.CompareAndSwap(0, int64(time.Since(launched)))
			} else if errors.Is(err, kerr.SaslAuthenticationFailed) {
				early = append(early, fmt.Errorf("%v after launch: %w", time.Since(launched).Round(time.Millisecond), err))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	var ready time.Duration
	codes := map[int]int{}
	for ready == 0 {
		code := r.readyz(t)
		codes[code]++
		if code == http.StatusOK {
			ready = time.Since(launched)
			if off := metricValue(r.metrics(t), stateOffsetMetric); off < float64(end.Offset-1) {
				t.Errorf("ready after %v at state offset %v; the topic ended at %d when it was launched", ready, off, end.Offset-1)
			}
			if err := kgoLogin(t, r, lastMech); err != nil {
				t.Errorf("ready after %v, but %s (written before the launch) does not log in: %v", ready, last, err)
			}
			break
		}
		if time.Since(launched) > 60*time.Second {
			t.Fatalf("proxy 2 not ready 60 s after its launch (readyz answers %v)", codes)
		}
		select {
		case <-r.exited:
			t.Fatalf("proxy 2 exited at start:\n%s", r.logs.String())
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	for firstLogin.Load() == 0 && time.Since(launched) < 60*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	prober.Wait()
	t.Logf("restart: ready %v after launch (readyz before: %v), first login as %s %v after launch",
		ready.Round(time.Millisecond), codes, last, time.Duration(firstLogin.Load()).Round(time.Millisecond))
	for _, err := range early {
		t.Errorf("proxy 2 refused %s, written before its launch: %v", last, err)
	}

	time.Sleep(500 * time.Millisecond) // writes go on after it is back
	users := w.stop(t)
	t.Logf("writer: %d users added, %d deleted, %d tokens through proxy 0", w.added, w.deleted, w.tokens)
	f.expectSameState(t, users)
}

// writerPassword is the password of every user the writer adds.
const writerPassword = "writer-secret"

// writer keeps changing state through proxy 0: it adds a user, every third
// round deletes the oldest one it added (deleteOldest), and every fifth
// creates a token.
type writer struct {
	mu                     sync.Mutex
	live                   []string // users added and not deleted, oldest first
	lastAdded              string
	kept                   string // lastWritten's answer: never deleted
	added, deleted, tokens int
	err                    error
	cancel                 context.CancelFunc
	done                   chan struct{}
}

func startWriter(t *testing.T, f *stateFleet) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	adm := adminVia(t, f.proxies[0], "admin")
	alice := adminVia(t, f.proxies[0], "alice")
	go func() {
		defer close(w.done)
		for i := 0; ctx.Err() == nil; i++ {
			user := "writer-" + strconv.Itoa(i)
			res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
				{User: user, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: writerPassword}})
			if err == nil {
				err = res.Error()
			}
			if err == nil && i%3 == 2 {
				err = w.deleteOldest(ctx, adm)
			}
			if err == nil && i%5 == 4 {
				if _, err = alice.CreateDelegationToken(ctx, kadm.CreateDelegationToken{}); err == nil {
					w.mu.Lock()
					w.tokens++
					w.mu.Unlock()
				}
			}
			w.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					w.err = fmt.Errorf("round %d: %w", i, err)
				}
				w.mu.Unlock()
				return
			}
			w.live = append(w.live, user)
			w.lastAdded = user
			w.added++
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// deleteOldest deletes the oldest user the writer added, but neither the
// one lastWritten named nor the last added (which lastWritten may name
// meanwhile).
func (w *writer) deleteOldest(ctx context.Context, adm *kadm.Client) error {
	w.mu.Lock()
	at := slices.IndexFunc(w.live, func(u string) bool { return u != w.kept && u != w.lastAdded })
	user := ""
	if at >= 0 {
		user = w.live[at]
	}
	w.mu.Unlock()
	if user == "" {
		return nil
	}
	res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: kadm.ScramSha512}}, nil)
	if err == nil {
		err = res.Error()
	}
	if err == nil {
		w.mu.Lock()
		w.live = slices.DeleteFunc(w.live, func(u string) bool { return u == user })
		w.deleted++
		w.mu.Unlock()
	}
	return err
}

// lastWritten is the last user whose addition proxy 0 has answered; the
// writer keeps it from then on.
func (w *writer) lastWritten(t *testing.T) string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	if w.lastAdded == "" {
		t.Fatal("the writer has written nothing yet")
	}
	w.kept = w.lastAdded
	return w.lastAdded
}

// stop ends the writer and returns the users it left, sorted.
func (w *writer) stop(t *testing.T) []string {
	t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	// A round cancelled mid-way may have added its user without knowing:
	// the proxies, not the writer, say what exists beyond w.live.
	return slices.Sorted(slices.Values(w.live))
}

// fleetState is what one proxy holds, as its admin APIs describe it and
// its /metrics digest says.
type fleetState struct {
	users  []string // SCRAM users of the admin API
	tokens []string // token ids
	digest float64
}

func (f *stateFleet) describe(t *testing.T, i int) fleetState {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	adm := adminVia(t, f.proxies[i], "admin")
	users, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatalf("describe users through proxy %d: %v", i, err)
	}
	toks, err := adm.DescribeDelegationTokens(ctx)
	if err != nil {
		t.Fatalf("describe tokens through proxy %d: %v", i, err)
	}
	var s fleetState
	for u := range users {
		s.users = append(s.users, u)
	}
	for _, tok := range toks {
		s.tokens = append(s.tokens, tok.TokenID)
	}
	slices.Sort(s.users)
	slices.Sort(s.tokens)
	s.digest = metricValue(f.proxies[i].metrics(t), stateDigestMetric)
	return s
}

// expectSameState waits (up to 10 s) until every proxy describes the same
// users and tokens and shows the same state digest, and checks that the
// writer's live users are among them.
func (f *stateFleet) expectSameState(t *testing.T, writerUsers []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var states []fleetState
	for {
		states = states[:0]
		same := true
		for i := range f.proxies {
			states = append(states, f.describe(t, i))
			s0, s := states[0], states[i]
			same = same && slices.Equal(s0.users, s.users) && slices.Equal(s0.tokens, s.tokens) && s0.digest == s.digest
		}
		if same || time.Now().After(deadline) {
			if !same {
				for i, s := range states {
					t.Errorf("proxy %d: %d users, %d tokens, digest %v", i, len(s.users), len(s.tokens), s.digest)
				}
				t.Fatal("the proxies do not hold the same state 10 s after the last write")
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if states[0].digest == 0 {
		t.Errorf("no %s on /metrics", stateDigestMetric)
	}
	for _, u := range writerUsers {
		if _, ok := slices.BinarySearch(states[0].users, u); !ok {
			t.Errorf("user %s, added through proxy 0, is not held", u)
		}
	}
	t.Logf("every proxy: %d users, %d tokens, digest %v", len(states[0].users), len(states[0].tokens), states[0].digest)
}
