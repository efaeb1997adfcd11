package telemetry

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

type fakeListener struct{ ready bool }

func (f *fakeListener) Ready() bool { return f.ready }

// countingDialer fails or succeeds as told and counts its dials.
type countingDialer struct {
	err   error
	dials int
}

func (d *countingDialer) Dial(context.Context, string, int32) (net.Conn, error) {
	d.dials++
	if d.err != nil {
		return nil, d.err
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func TestReadinessChecksListenerAndCachesUpstream(t *testing.T) {
	ln := &fakeListener{ready: true}
	up := &countingDialer{}
	now := time.Unix(1_700_000_000, 0)
	checks := Readiness(ln, up, func() time.Time { return now })
	byName := map[string]Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	ctx := context.Background()
	if err := byName["listener"].Fn(ctx); err != nil {
		t.Fatalf("listener ready: %v", err)
	}
	ln.ready = false
	if err := byName["listener"].Fn(ctx); err == nil {
		t.Fatal("listener not ready but check passed")
	}

	upCheck := byName["upstream"].Fn
	if err := upCheck(ctx); err != nil || up.dials != 1 {
		t.Fatalf("first upstream check: %v, %d dials", err, up.dials)
	}
	up.err = errors.New("refused")
	now = now.Add(upstreamCheckTTL - time.Millisecond)
	if err := upCheck(ctx); err != nil || up.dials != 1 {
		t.Fatalf("within the TTL the answer is reused: %v, %d dials", err, up.dials)
	}
	now = now.Add(time.Millisecond)
	if err := upCheck(ctx); err == nil || up.dials != 2 {
		t.Fatalf("after the TTL the upstream is dialled again: %v, %d dials", err, up.dials)
	}
}
