package proxy

import (
	"testing"
	"time"
)

func TestBackoffSchedule(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBackoff(100*time.Millisecond, time.Second, func() time.Time { return now })
	if d, ok := b.admit("ip:1.2.3.4", "user:alice"); d != 0 || !ok {
		t.Fatalf("a key without failures is held %v (%v)", d, ok)
	}
	var got []time.Duration
	for range 6 {
		got = append(got, b.fail("user:alice", "ip:1.2.3.4"))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delay %d: %v, want %v", i, got[i], want[i]*time.Millisecond)
		}
	}
	// Six failures at one instant: the next check is a full delay away,
	// the one after it two, and a third would be past max: refused.
	if d, ok := b.admit("ip:1.2.3.4", "user:alice"); d != time.Second || !ok {
		t.Fatalf("first hold %v (%v)", d, ok)
	}
	if _, ok := b.admit("ip:1.2.3.4", "user:alice"); ok {
		t.Fatal("a check two delays away was admitted")
	}
	// The source address holds another user's attempt too.
	now = now.Add(2 * time.Second)
	if d, ok := b.admit("ip:1.2.3.4", "user:bob"); d != 0 || !ok {
		t.Fatalf("after the slots passed: %v (%v)", d, ok)
	}
	if d, _ := b.admit("ip:1.2.3.4", "user:bob"); d != time.Second {
		t.Fatalf("the source IP's schedule applies to another user: %v", d)
	}
	// A check that succeeds gives its slot back.
	now = now.Add(2 * time.Second)
	d, s, _ := b.reserve("ip:1.2.3.4", "user:bob")
	b.release(s)
	if d2, _ := b.admit("ip:1.2.3.4", "user:bob"); d != 0 || d2 != 0 {
		t.Fatalf("after a released slot: %v, then %v", d, d2)
	}
	// A success clears the user's key, not the address's.
	b.succeed("user:alice")
	if b.count("user:alice") != 0 || b.count("ip:1.2.3.4") != 6 {
		t.Fatalf("after success: alice %d, ip %d", b.count("user:alice"), b.count("ip:1.2.3.4"))
	}
	now = now.Add(time.Hour)
	if d, ok := b.admit("ip:1.2.3.4", "user:bob"); d != 0 || !ok {
		t.Fatalf("after the forget window: %v (%v)", d, ok)
	}
	if d := b.fail("user:bob"); d != 100*time.Millisecond {
		t.Fatalf("first failure after the forget window: %v", d)
	}
}

// count is the failures recorded for key.
func (b *backoff) count(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.live(key, b.now()); f != nil {
		return f.n
	}
	return 0
}

// entries is the number of keys kept, in both tables.
func (b *backoff) entries() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m) + len(b.ips)
}
