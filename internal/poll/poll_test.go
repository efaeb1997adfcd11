package poll

import (
	"context"
	"testing"
	"time"
)

// TestEveryCallsUntilCancelled: fn runs on every tick and Every returns
// once ctx ends, without another call.
func TestEveryCallsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	Every(ctx, time.Millisecond, func() {
		calls++
		if calls == 3 {
			cancel()
		}
	})
	if calls != 3 {
		t.Fatalf("%d calls after the context ended on the third", calls)
	}
}

// TestEveryReturnsAtOnceOnAnEndedContext: no call when ctx has ended.
func TestEveryReturnsAtOnceOnAnEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Every(ctx, time.Hour, func() { t.Fatal("called") })
}
