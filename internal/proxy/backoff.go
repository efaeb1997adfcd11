package proxy

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// backoff is the failed-login throttle (docs/protocol.md, "Failed-login
// throttle"). It is keyed by the user name a client sent, existing or not
// (so it cannot tell which users exist), and by the source IP, and it
// throttles attempts, not answers: a SCRAM exchange is held before the
// round that checks the password until each of its keys allows one more
// check.
//
// Each key with failures keeps a schedule: the time its next check may run.
// Every admitted attempt takes that slot and moves it on by the key's delay
// (the failed-auth delay doubled per failure, up to max), so parallel
// attempts are spaced, not all answered after the same wait. An attempt
// whose slot is more than max away is refused without its password being
// checked. A failure moves the slot to at least now plus the new delay. A
// success gives its own slot back (so good logins from an address with
// past failures do not queue behind each other) and clears the user's key;
// a source address's count fades after the forget window without failures.
//
// Memory is bounded: user names and source IPs have separate tables of at
// most limit entries each, keyed by a seeded 64-bit hash of the name. When a
// table is full, a new key replaces the entry with the fewest failures
// (forgotten ones first, then the oldest) among a few sampled, and only if
// that entry has no more failures than the newcomer; otherwise the newcomer
// is not tracked. A flood of fresh names therefore cannot evict the count
// of a user under attack. Safe for concurrent use.
type backoff struct {
	base, max, forget time.Duration
	limit             int // entries per table
	now               func() time.Time
	seed              maphash.Seed

	mu  sync.Mutex
	m   map[uint64]*failures // user names
	ips map[uint64]*failures // source addresses
}

type failures struct {
	n    int       // failures within the forget window
	last time.Time // the last failure
	next time.Time // the earliest time the next check may run
}

// evictSample is how many entries a full table compares to pick a victim.
const evictSample = 8

func newBackoff(base, max time.Duration, now func() time.Time) *backoff {
	return &backoff{
		base: base, max: max, forget: 15 * time.Minute, limit: 50000, now: now,
		seed: maphash.MakeSeed(), m: map[uint64]*failures{}, ips: map[uint64]*failures{},
	}
}

// table and hash of a key: "ip:<address>" or "user:<name>".
func (b *backoff) lookup(key string) (map[uint64]*failures, uint64) {
	t := b.m
	if strings.HasPrefix(key, "ip:") {
		t = b.ips
	}
	return t, maphash.String(b.seed, key)
}

// delay is the spacing between checks for a key with n failures.
func (b *backoff) delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.base
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// live returns the entry of key, nil when it has none or it was forgotten.
func (b *backoff) live(key string, now time.Time) *failures {
	t, h := b.lookup(key)
	f := t[h]
	if f == nil || now.Sub(f.last) > b.forget {
		return nil
	}
	return f
}

// slot is the place an admitted attempt took in its keys' schedules.
type slot struct {
	at   time.Time
	keys []string
	ends []time.Time // each key's next check after this one
}

// admit asks for a check of a password for keys. It returns how long to
// hold the attempt before checking it, or ok false when the attempt must be
// refused unchecked because its slot is more than max away.
func (b *backoff) admit(keys ...string) (wait time.Duration, ok bool) {
	wait, _, ok = b.reserve(keys...)
	return wait, ok
}

// reserve is admit that also returns the slot taken, for release.
func (b *backoff) reserve(keys ...string) (wait time.Duration, s slot, ok bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var at time.Time
	for _, k := range keys {
		if f := b.live(k, now); f != nil && f.n > 0 {
			s := f.next
			if s.Before(now) {
				s = now
			}
			if s.After(at) {
				at = s
			}
		}
	}
	if at.IsZero() {
		return 0, slot{}, true
	}
	if at.Sub(now) > b.max {
		return 0, slot{}, false
	}
	s = slot{at: at}
	for _, k := range keys {
		if f := b.live(k, now); f != nil && f.n > 0 {
			f.next = at.Add(b.delay(f.n))
			s.keys, s.ends = append(s.keys, k), append(s.ends, f.next)
		}
	}
	return at.Sub(now), s, true
}

// release gives back the slot of an attempt that succeeded, for each key
// whose schedule nobody has moved on since.
func (b *backoff) release(s slot) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, k := range s.keys {
		if f := b.live(k, now); f != nil && f.next.Equal(s.ends[i]) {
			f.next = s.at
		}
	}
}

// fail records a failed check for every key and returns the delay the keys
// now impose (the longest).
func (b *backoff) fail(keys ...string) time.Duration {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		f := b.live(k, now)
		if f == nil {
			if f = b.insert(k, now); f == nil {
				continue
			}
		}
		f.n++
		f.last = now
		d := b.delay(f.n)
		if next := now.Add(d); next.After(f.next) {
			f.next = next
		}
		wait = max(wait, d)
	}
	return wait
}

// insert makes a fresh entry for key (which has none live), or returns nil
// when its table is full of entries worth more than a first failure.
func (b *backoff) insert(key string, now time.Time) *failures {
	t, h := b.lookup(key)
	if _, ok := t[h]; !ok && len(t) >= b.limit {
		var victim uint64
		var worst *failures
		i := 0
		for vh, f := range t { // map order is randomized: a sample
			if worst == nil || b.weaker(f, worst, now) {
				victim, worst = vh, f
			}
			if i++; i == evictSample {
				break
			}
		}
		if b.count1(worst, now) > 1 {
			return nil
		}
		delete(t, victim)
	}
	f := &failures{}
	t[h] = f
	return f
}

// count1 is an entry's failures, 0 once forgotten.
func (b *backoff) count1(f *failures, now time.Time) int {
	if now.Sub(f.last) > b.forget {
		return 0
	}
	return f.n
}

// weaker reports whether a is a better eviction victim than c: fewer live
// failures, then an older last failure.
func (b *backoff) weaker(a, c *failures, now time.Time) bool {
	na, nc := b.count1(a, now), b.count1(c, now)
	if na != nc {
		return na < nc
	}
	return a.last.Before(c.last)
}

// succeed clears the keys after a successful check. Callers pass the user
// name's key only: a source address is not cleared by one good login.
func (b *backoff) succeed(keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		t, h := b.lookup(k)
		delete(t, h)
	}
}
