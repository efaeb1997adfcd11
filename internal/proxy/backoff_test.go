package proxy

import (
	"testing"
	"time"
)

func TestBackoffDoublesPerKeyAndClears(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBackoff(100*time.Millisecond, time.Second, func() time.Time { return now })
	var got []time.Duration
	for i := 0; i < 6; i++ {
		got = append(got, b.fail("u:alice", "ip:1.2.3.4"))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("wait %d: %v, want %v", i, got[i], want[i]*time.Millisecond)
		}
	}
	if d := b.fail("u:bob", "ip:1.2.3.4"); d != time.Second {
		t.Fatalf("the source IP's backoff applies to another user: %v", d)
	}
	b.succeed("u:alice", "ip:1.2.3.4")
	if d := b.fail("u:alice", "ip:1.2.3.4"); d != 100*time.Millisecond {
		t.Fatalf("after success: %v", d)
	}
	now = now.Add(time.Hour)
	if d := b.fail("u:bob"); d != 100*time.Millisecond {
		t.Fatalf("after the forget window: %v", d)
	}
	b.limit = 3
	for i := 0; i < 10; i++ {
		b.fail(string(rune('a' + i)))
	}
	if len(b.m) > 3 {
		t.Fatalf("%d entries kept", len(b.m))
	}
}

// count is the failures recorded for key.
func (b *backoff) count(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[key].n
}
