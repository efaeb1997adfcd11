package upstream

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

type countingDialer struct {
	d     *Dialer
	calls atomic.Int32
	fail  atomic.Bool
}

func (c *countingDialer) Dial(ctx context.Context, p string, node int32) (net.Conn, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, errors.New("upstream down")
	}
	return c.d.Dial(ctx, p, node)
}

func TestVersionProbeCachesAndServesStaleWhileRefreshing(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.ListenFn(func(n, _ string) (net.Listener, error) { return net.Listen(n, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	d, _ := NewDialer(cluster.ListenAddrs(), time.Second)
	cd := &countingDialer{d: d}
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	p := NewVersionProbe(cd, time.Minute, func() time.Time { return time.Unix(0, now.Load()) })

	ctx := context.Background()
	r1, err := p.UpstreamVersions(ctx)
	if err != nil || len(r1.ApiKeys) < 10 {
		t.Fatalf("%v %v", r1, err)
	}
	if r2, _ := p.UpstreamVersions(ctx); r2 != r1 || cd.calls.Load() != 1 {
		t.Fatalf("fresh answer not cached: %d dials", cd.calls.Load())
	}
	// Stale and the upstream down: the stale answer comes back at once.
	now.Add(int64(2 * time.Minute))
	cd.fail.Store(true)
	start := time.Now()
	if r3, err := p.UpstreamVersions(ctx); err != nil || r3 != r1 || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("stale answer: %v %v after %v", r3, err, time.Since(start))
	}
	// With no answer at all, a dead upstream is an error bounded by ctx.
	p2 := NewVersionProbe(cd, time.Minute, nil)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := p2.UpstreamVersions(cctx); err == nil {
		t.Fatal("probe of a dead upstream succeeded")
	}
}
