package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
)

// Server accepts client connections on one or more listeners and runs a
// session for each. Create it with New; Serve and Shutdown are safe for
// concurrent use.
type Server struct {
	opts           Options
	versions       *versionCache
	local          map[int16]rewrite.Range // the versions Options.Local answers
	backoff        *backoff
	mechanismNames []string
	pipeline       []stage             // every request after authentication passes these
	buffers        protocol.BufferPool // frames and relay chunks
	batches        sync.Pool           // *[]byte of batchSize capacity, for batchConn

	sem    chan struct{} // one slot per open connection
	perIP  perIP         // open connections per source address
	wg     sync.WaitGroup
	nextID atomic.Uint64

	// connCtx ends every session at once; drainCtx asks sessions to stop
	// reading and deliver what they owe.
	connCtx     context.Context
	cancelConns context.CancelFunc
	drainCtx    context.Context
	startDrain  context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	shutdown  bool
}

// New validates opts and builds a Server.
func New(opts Options) (*Server, error) {
	o := opts.withDefaults()
	if err := errors.Join(o.problems()...); err != nil {
		return nil, err
	}
	var extra []rewrite.Range
	local := map[int16]rewrite.Range{}
	if o.Local != nil {
		extra = o.Local.Ranges()
	}
	for _, l := range extra {
		if _, dup := local[l.Key]; dup || l.Min < 0 || l.Max < l.Min || l.Max > protocol.MaxVersion(l.Key) {
			return nil, fmt.Errorf("proxy: local API %s v%d-%d is not servable", kmsg.NameForKey(l.Key), l.Min, l.Max)
		}
		local[l.Key] = l
	}
	s := &Server{
		opts:      o,
		local:     local,
		sem:       make(chan struct{}, o.MaxConnections),
		listeners: map[net.Listener]struct{}{},
		versions:  &versionCache{source: o.Versions, reg: o.Registry, own: ownRanges(extra)},
		pipeline:  newPipeline(),
	}
	s.backoff = newBackoff(o.FailedAuthDelay, max(o.FailedAuthDelay, o.MaxFailedAuthDelay), o.Now)
	if o.MaxFailedAuthDelay < 0 {
		s.backoff = newBackoff(0, 0, o.Now) // no delay: admits every check at once
	}
	for _, m := range o.Mechanisms {
		s.mechanismNames = append(s.mechanismNames, string(m))
	}
	s.batches.New = func() any { b := make([]byte, 0, batchSize); return &b }
	s.connCtx, s.cancelConns = context.WithCancel(context.Background())
	s.drainCtx, s.startDrain = context.WithCancel(context.Background())
	return s, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts connections on ln until ctx ends or Shutdown is called. It
// takes a connection slot before accepting, so at MaxConnections the
// listener's backlog, not the proxy's memory, absorbs the excess. Accept
// errors back off exponentially (5 ms to 1 s) and never end the listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeNode(ctx, ln, -1)
}

// ServeNode is Serve for a listener whose connections all reach broker node
// (port-per-broker routing); -1 is the bootstrap route.
func (s *Server) ServeNode(ctx context.Context, ln net.Listener, node int32) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	log := s.opts.Logger.With(zap.String(logListener, s.opts.ListenerName))
	var backoff time.Duration
	for {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.drainCtx.Done():
			return ErrServerClosed
		}
		if !s.track() {
			<-s.sem
			return ErrServerClosed
		}
		conn, err := ln.Accept()
		if err != nil {
			<-s.sem
			s.wg.Done()
			if s.isShutdown() {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed; backing off", zap.Error(err), zap.Duration("backoff", backoff))
			sleep(ctx, backoff)
			continue
		}
		backoff = 0
		ip, ok := s.perIP.open(conn.RemoteAddr(), &s.opts)
		if !ok {
			// Counted before the close, so whoever sees the close also
			// sees the count.
			s.opts.Metrics.ConnectionRefused(s.opts.ListenerName, "max_connections_per_ip")
			s.perIP.refused(log, ip, s.opts.Now())
			_ = conn.Close()
			<-s.sem
			s.wg.Done()
			continue
		}
		go s.runSession(conn, log, node, ip)
	}
}

// runSession serves one connection; the connection slot and the drain
// count are released when the session ends, on whichever goroutine ends it.
func (s *Server) runSession(conn net.Conn, log *zap.Logger, node int32, ip netip.Addr) {
	id := s.nextID.Add(1)
	s.opts.Metrics.ConnectionOpened(s.opts.ListenerName)
	sess := &session{
		srv:   s,
		id:    id,
		raw:   conn,
		conn:  conn,
		start: s.opts.Now(),
		log:   connLog{base: log, fields: []zap.Field{zap.Uint64(logConnID, id), zap.String(logRemote, conn.RemoteAddr().String())}},
		ctx:   s.connCtx,
		node:  node,
	}
	sess.run(s.connCtx, s.drainCtx, func() {
		s.perIP.close(ip)
		<-s.sem
		s.wg.Done()
	})
}

// track counts a connection about to be accepted in the drain group, unless
// Shutdown has begun: an Add must not run concurrently with Shutdown's Wait
// on an empty group.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) isShutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// Shutdown stops accepting, lets every authenticated session finish the
// requests it already forwarded and deliver their responses, and closes
// sessions still authenticating. When ctx ends first, every connection is
// closed at once and ctx's error is returned. Shutdown is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	s.startDrain()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancelConns()
		return nil
	case <-ctx.Done():
		s.cancelConns()
		<-done
		return ctx.Err()
	}
}

// Ready reports whether the server accepts new connections: not shutting
// down and below MaxConnections. Health checks read it.
func (s *Server) Ready() bool {
	return !s.isShutdown() && len(s.sem) < cap(s.sem)
}
