package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Log keys: snake_case constants, so that every line spells a field alike.
const (
	logConnID     = "conn_id"
	logRemote     = "remote_addr"
	logListener   = "listener"
	logPrincipal  = "principal"
	logMechanism  = "mechanism"
	logReason     = "reason"
	logState      = "state"
	logAPIKey     = "api_key"
	logAPIVersion = "api_version"
	logUsername   = "username"
	logTokenAuth  = "token_auth"
)

// session is one client connection from accept to close. Its fields are
// owned by the goroutine that runs the gate and then the relay's reader,
// SASL state included. The relay's writer goroutine uses only the fields
// fixed before it starts (srv, raw, conn, batch, log, ctx), up (set once,
// before the first entry that needs it is queued) and the atomic counters.
type session struct {
	srv   *Server
	id    uint64
	raw   net.Conn   // the accepted TCP connection
	conn  net.Conn   // raw, or the TLS connection over it
	batch *batchConn // under the TLS connection; nil without TLS
	log   connLog
	start time.Time
	ctx   context.Context // ends when the server stops hard
	node  int32           // the upstream broker this connection reaches; -1: bootstrap

	// The SASL machine's state (sasl.go), for the login and KIP-368
	// re-authentication alike.
	state     state
	mech      sasl.Mechanism
	conv      *sasl.Conversation
	result    sasl.Result
	principal string        // "User:<name>" once authenticated
	deadline  time.Time     // KIP-368 session deadline; zero: none
	lifetime  time.Duration // session_lifetime_ms sent to the client
	// reauthStart is when the last re-authentication began (at most one a
	// second); reauthMismatch marks a re-auth asking for another mechanism.
	reauthStart    time.Time
	reauthMismatch string
	// slot is the login-throttle slot the current exchange's password
	// check took (backoff.go), given back if it succeeds.
	slot slot

	fromClient atomic.Int64
	toClient   atomic.Int64
	requests   atomic.Int64

	// Relay state, set up lazily (relay.go): an authenticated connection
	// that sends nothing holds no upstream connection and one goroutine.
	up         net.Conn
	queue      chan pending
	writerDone chan closeReason
	writerGone chan struct{} // closed when the writer goroutine exits
	stopUp     func() bool
}

// run serves the connection until it ends, then closes it, logs exactly one
// summary line and calls done. Once authenticated, the relay continues on a
// fresh goroutine and this one returns: its stack grew during the TLS
// handshake and SCRAM and would otherwise stay that size for as long as the
// connection idles.
func (s *session) run(ctx context.Context, drain context.Context, done func()) {
	reason, relay := s.serve(ctx, drain)
	if relay {
		go func() {
			s.finish(s.relay(ctx, drain))
			done()
		}()
		return
	}
	s.finish(reason)
	done()
}

// finish closes the connection and logs the summary line.
func (s *session) finish(reason closeReason) {
	_ = s.conn.Close()
	o := &s.srv.opts
	o.Metrics.ConnectionClosed(o.ListenerName, string(reason))
	logAt := s.log.Debug
	if s.principal != "" {
		logAt = s.log.Info
	}
	logAt("connection closed",
		zap.String(logReason, string(reason)),
		zap.String(logState, s.state.String()),
		zap.Int64("bytes_from_client", s.fromClient.Load()),
		zap.Int64("bytes_to_client", s.toClient.Load()),
		zap.Int64("requests", s.requests.Load()),
		zap.Duration("duration", o.Now().Sub(s.start)))
}

// serve runs the TLS handshake and the SASL gate; relay true means the
// connection is authenticated and the relay should run.
func (s *session) serve(ctx, drain context.Context) (reason closeReason, relay bool) {
	o := &s.srv.opts
	// TLS handshake and SASL share one deadline: a client may not sit
	// half-authenticated (ghostunnel's forceHandshake, extended to SASL).
	if err := s.raw.SetDeadline(o.Now().Add(o.AuthTimeout)); err != nil {
		return reasonIOError, false
	}
	// A drain (which always precedes the hard stop) ends unauthenticated
	// connections at once: they owe the client nothing.
	stop := context.AfterFunc(drain, func() { _ = s.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if o.TLS != nil {
		s.batch = &batchConn{Conn: s.raw, pool: &s.srv.batches}
		tc := tls.Server(s.batch, o.TLS)
		s.conn = tc
		if err := tc.HandshakeContext(ctx); err != nil {
			s.logHandshakeError(err)
			if isTimeout(err) {
				return reasonAuthTimeout, false
			}
			return reasonTLSHandshake, false
		}
		if o.RouteSNI != nil {
			if n, ok := o.RouteSNI(tc.ConnectionState().ServerName); ok {
				s.node = n
			}
		}
	}

	if reason, ok := s.authenticate(ctx); !ok {
		return reason, false
	}
	if !stop() || drain.Err() != nil {
		return reasonShutdown, false
	}
	if err := s.raw.SetDeadline(time.Time{}); err != nil {
		return reasonIOError, false
	}
	return "", true
}

// logHandshakeError says plainly when the client is not speaking TLS at all.
func (s *session) logHandshakeError(err error) {
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &rh) && protocol.LooksLikeKafkaRequest(rh.RecordHeader[:]):
		s.log.Warn("client is speaking plaintext Kafka to the TLS listener; configure security.protocol=SASL_SSL")
	case errors.As(err, &rh):
		s.log.Info("tls handshake failed: first bytes are not TLS", zap.Error(err))
	case isTimeout(err):
		s.log.Info("tls handshake timed out")
	case isClosedConnErr(err):
		s.log.Debug("client closed during tls handshake", zap.Error(err))
	default:
		s.log.Info("tls handshake failed", zap.Error(err))
	}
}

// write sends b to the client. Over TLS, writes of more than one record
// reach the socket in batches (batchConn). It reads only fields fixed before
// the relay starts, so the gate and the relay's writer goroutine both use
// it; the gate's writes run under the authentication deadline, the writer's
// under their own (deliver).
func (s *session) write(b []byte) error {
	o := &s.srv.opts
	batch := s.batch != nil && len(b) > maxPlaintext
	if batch {
		s.batch.begin()
	}
	n, err := s.conn.Write(b)
	if batch {
		if berr := s.batch.end(); err == nil && berr != nil {
			n, err = 0, berr
		}
	}
	s.toClient.Add(int64(n))
	o.Metrics.BytesRelayed(0, int64(n))
	if err != nil {
		return &PeerError{Side: SideClient, Op: "write", Err: err}
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sessionLifetime implements KIP-368's lifetime rule
// (SaslServerAuthenticator.ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs): a
// token login expires with its token, maxReauth caps every session when > 0,
// and with neither the connection has no deadline and the client is told 0
// (docs/protocol.md, "Re-authentication").
func sessionLifetime(now, tokenExpiry time.Time, maxReauth time.Duration) (time.Duration, bool) {
	hasToken := !tokenExpiry.IsZero()
	switch {
	case !hasToken && maxReauth <= 0:
		return 0, false
	case !hasToken:
		return maxReauth, true
	}
	left := max(tokenExpiry.Sub(now), 0)
	if maxReauth > 0 {
		left = min(left, maxReauth)
	}
	return left, true
}
