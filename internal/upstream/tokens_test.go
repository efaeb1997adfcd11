package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/upstream/upstreamtest"
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

// The start-up check expires its token even when the first expires reach a
// node that has not applied the creation yet (DELEGATION_TOKEN_NOT_FOUND),
// as on a cluster of several nodes.
func TestCheckExpiresItsTokenOnALaggingNode(t *testing.T) {
	b := &upstreamtest.TokenBroker{Key: "secret", Requester: dtoken.Principal{Type: "User", Name: "proxy"}}
	b.ExpireLag.Store(2)
	tokens := NewTokens(TokensOptions{Dial: b, Requester: "proxy", Mechanism: "SCRAM-SHA-512"})
	if err := tokens.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if n := b.ExpireLag.Load(); n != 0 {
		t.Fatalf("%d lagging answers left: the check did not retry", n)
	}
	if n := describedTokens(t, b); n != 0 {
		t.Fatalf("the broker still holds %d tokens after the check", n)
	}
}

func describedTokens(t *testing.T, b *upstreamtest.TokenBroker) int {
	t.Helper()
	resp, err := roundTripAsProxy(context.Background(), b, kmsg.NewPtrDescribeDelegationTokenRequest())
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	return len(resp.(*kmsg.DescribeDelegationTokenResponse).TokenDetails)
}
