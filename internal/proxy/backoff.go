package proxy

import (
	"sync"
	"time"
)

// backoff slows repeated failed logins: each failure for a key (a user
// name, a source IP) doubles that key's wait before the failure is
// answered, from the failed-auth delay up to max; a success clears it and a
// quiet period forgets it. Keyed by the name a client sent, existing or not,
// so it cannot reveal which users exist. Safe for concurrent use.
type backoff struct {
	base, max, forget time.Duration
	limit             int // entries kept; beyond it stale ones are dropped
	now               func() time.Time

	mu sync.Mutex
	m  map[string]failures
}

type failures struct {
	n    int
	last time.Time
}

func newBackoff(base, max time.Duration, now func() time.Time) *backoff {
	return &backoff{base: base, max: max, forget: 15 * time.Minute, limit: 100000, now: now, m: map[string]failures{}}
}

// fail records a failure for every key and returns the wait to apply: the
// longest among the keys.
func (b *backoff) fail(keys ...string) time.Duration {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) >= b.limit {
		b.prune(now)
	}
	var wait time.Duration
	for _, k := range keys {
		f := b.m[k]
		if now.Sub(f.last) > b.forget {
			f.n = 0
		}
		f.n++
		f.last = now
		b.m[k] = f
		d := b.base
		for i := 1; i < f.n && d < b.max; i++ {
			d *= 2
		}
		wait = max(wait, min(d, b.max))
	}
	return wait
}

// succeed clears the keys after a successful login.
func (b *backoff) succeed(keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		delete(b.m, k)
	}
}

// prune drops entries past the forget window, then, if still full, all of
// them: under a flood of distinct keys memory stays bounded.
func (b *backoff) prune(now time.Time) {
	for k, f := range b.m {
		if now.Sub(f.last) > b.forget {
			delete(b.m, k)
		}
	}
	if len(b.m) >= b.limit {
		clear(b.m)
	}
}
