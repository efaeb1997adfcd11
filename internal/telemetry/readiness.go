package telemetry

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Accepting is the client listener as readiness sees it: false while
// shutting down or at max connections. Safe for concurrent use.
type Accepting interface {
	Ready() bool
}

// UpstreamDialer opens a connection to any upstream broker (node -1) as the
// proxy itself (principal ""). Safe for concurrent use.
type UpstreamDialer interface {
	Dial(ctx context.Context, principal string, node int32) (net.Conn, error)
}

// upstreamCheckTTL is how long an upstream check's answer is reused, so a
// burst of /readyz requests opens one upstream connection, not one each.
const upstreamCheckTTL = 3 * time.Second

// Readiness lists /readyz's checks: the listener accepts, and the upstream
// accepts a connection (answer cached for a few seconds). Credentials and
// state are loaded before the listener opens, so a running proxy has them.
// now may be nil (time.Now).
func Readiness(listener Accepting, up UpstreamDialer, now func() time.Time) []Check {
	if now == nil {
		now = time.Now
	}
	var mu sync.Mutex
	var last time.Time
	var lastErr error
	return []Check{
		{Name: "listener", Fn: func(context.Context) error {
			if !listener.Ready() {
				return errors.New("shutting down or at max connections")
			}
			return nil
		}},
		{Name: "upstream", Fn: func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if !last.IsZero() && now().Sub(last) < upstreamCheckTTL {
				return lastErr
			}
			c, err := up.Dial(ctx, "", -1)
			if err == nil {
				c.Close()
			}
			last, lastErr = now(), err
			return err
		}},
	}
}
