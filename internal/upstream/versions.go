package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// ConnDialer opens one upstream connection (node -1: any bootstrap
// server); *Dialer satisfies it.
type ConnDialer interface {
	Dial(ctx context.Context, principal string, node int32) (net.Conn, error)
}

// dialBound opens a connection as the proxy's own identity whose I/O is
// bounded by ctx: its deadline, and cancellation, which sets the
// connection's deadline to the past. Closing the connection releases the
// cancellation hook too.
func dialBound(ctx context.Context, d ConnDialer) (net.Conn, error) {
	conn, err := d.Dial(ctx, "", -1)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return &boundConn{Conn: conn, stop: stop}, nil
}

// boundConn stops dialBound's cancellation hook when it is closed.
type boundConn struct {
	net.Conn
	stop func() bool
}

func (c *boundConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// VersionProbe learns the upstream's ApiVersions over a connection of its
// own and caches the answer for a TTL. It is safe for concurrent use. Only
// one probe runs at a time: callers with no answer yet wait for it (each
// bounded by its own ctx); once an answer exists a stale one is served at
// once while a refresh runs in the background, so a slow or dead upstream
// never stalls logins.
type VersionProbe struct {
	dial ConnDialer
	ttl  time.Duration
	now  func() time.Time

	mu       sync.Mutex
	cached   *kmsg.ApiVersionsResponse
	fetched  time.Time
	inflight *probeCall
}

type probeCall struct {
	done chan struct{}
	resp *kmsg.ApiVersionsResponse
	err  error
}

// NewVersionProbe returns a probe that refreshes at most every ttl (0: 5 min).
// now may be nil (time.Now).
func NewVersionProbe(d ConnDialer, ttl time.Duration, now func() time.Time) *VersionProbe {
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &VersionProbe{dial: d, ttl: ttl, now: now}
}

// probeTimeout bounds one background probe.
const probeTimeout = 30 * time.Second

// Prime learns the upstream's versions once, within the probe timeout, so
// the first client does not wait for them. An error means the upstream is
// not reachable yet; clients are refused until it is.
func (p *VersionProbe) Prime(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := p.UpstreamVersions(ctx)
	return err
}

// UpstreamVersions returns the cached response, probing when there is none
// and refreshing in the background when it is stale. A failed refresh keeps
// the stale answer.
func (p *VersionProbe) UpstreamVersions(ctx context.Context) (*kmsg.ApiVersionsResponse, error) {
	p.mu.Lock()
	cached, fresh := p.cached, p.cached != nil && p.now().Sub(p.fetched) < p.ttl
	call := p.inflight
	if !fresh && call == nil {
		call = &probeCall{done: make(chan struct{})}
		p.inflight = call
		go p.run(call)
	}
	p.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	select {
	case <-call.done:
		return call.resp, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("probe upstream api versions: %w", ctx.Err())
	}
}

func (p *VersionProbe) run(call *probeCall) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	call.resp, call.err = p.probe(ctx)
	p.mu.Lock()
	if call.err == nil {
		p.cached, p.fetched = call.resp, p.now()
	}
	p.inflight = nil
	p.mu.Unlock()
	close(call.done)
}

// probe sends ApiVersions at kmsg's highest version and, on
// UNSUPPORTED_VERSION, retries at the highest version the broker names.
func (p *VersionProbe) probe(ctx context.Context) (*kmsg.ApiVersionsResponse, error) {
	conn, err := dialBound(ctx, p.dial) // wall-clock I/O bound; p.now is only for the TTL
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	version := kmsg.NewPtrApiVersionsRequest().MaxVersion()
	for attempt := int32(1); attempt <= 2; attempt++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(version)
		req.ClientSoftwareName = "scram-proxy"
		req.ClientSoftwareVersion = "1"
		resp, err := roundTrip(conn, attempt, req)
		if err != nil {
			return nil, fmt.Errorf("probe upstream api versions: %w", err)
		}
		r := resp.(*kmsg.ApiVersionsResponse)
		if r.ErrorCode == kerr.UnsupportedVersion.Code {
			for _, k := range r.ApiKeys {
				if k.ApiKey == 18 && k.MaxVersion < version {
					version = k.MaxVersion
				}
			}
			continue
		}
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return nil, fmt.Errorf("probe upstream api versions: %w", err)
		}
		return r, nil
	}
	return nil, errors.New("probe upstream api versions: no version accepted")
}

// maxProbeResponse caps a response to the proxy's own requests (ApiVersions,
// Metadata, the SASL exchange).
const maxProbeResponse = 16 << 20

// roundTrip writes req as a client would and reads its response. A
// FrameReader never reads past its frame, so one per call is safe.
func roundTrip(conn net.Conn, corr int32, req kmsg.Request) (kmsg.Response, error) {
	var f kmsg.RequestFormatter
	if _, err := conn.Write(f.AppendRequest(nil, req, corr)); err != nil {
		return nil, err
	}
	buf, err := protocol.NewFrameReader(conn, maxProbeResponse, nil).Read()
	if err != nil {
		return nil, err
	}
	if len(buf) < 4 {
		return nil, fmt.Errorf("response of %d bytes: %w", len(buf), protocol.ErrTruncated)
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	hl, err := protocol.ResponseHeaderLen(buf, req.Key(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	body := buf[hl:]
	if len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == kerr.UnsupportedVersion.Code {
		resp.SetVersion(0) // KIP-511: the error answer has a v0 body
	}
	return resp, resp.ReadFrom(body)
}
