package upstream

import (
	"testing"
	"time"
)

// A token is replaced within a tenth of its expiry period of its expiry,
// or within a quarter of it of its maximum lifetime; renewals keep it
// otherwise.
func TestBrokerTokenStale(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	day := 24 * time.Hour
	tok := &brokerToken{created: t0, expiry: t0.Add(day), max: t0.Add(7 * day), period: day, renewAt: t0.Add(day / 2)}
	for _, tc := range []struct {
		at    time.Duration
		stale bool
	}{
		{0, false},
		{day / 2, false},
		{day - day/10 - time.Second, false},
		{day - day/10, true},
		{2 * day, true},
	} {
		if got := tok.stale(t0.Add(tc.at)); got != tc.stale {
			t.Errorf("at %v: stale %v, want %v", tc.at, got, tc.stale)
		}
	}
	// Renewed up to its maximum lifetime: replaced a quarter period before it.
	tok.expiry = tok.max
	for _, tc := range []struct {
		at    time.Duration
		stale bool
	}{
		{7*day - day/4 - time.Second, false},
		{7*day - day/4, true},
	} {
		if got := tok.stale(t0.Add(tc.at)); got != tc.stale {
			t.Errorf("renewed to the maximum, at %v: stale %v, want %v", tc.at, got, tc.stale)
		}
	}
}
