package poll

import (
	"context"
	"time"
)

// Every calls fn once per interval, the first time one interval from now,
// and returns when ctx ends. Calls never overlap: a tick that comes while
// fn runs is dropped.
func Every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
