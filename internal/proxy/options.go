package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// UpstreamDialer opens the upstream connection of one authenticated client
// session: to broker node, or to any bootstrap broker when node is -1.
// principal is "User:<name>", for identity mapping; tokenID is the
// delegation token the client logged in with ("" for a password login).
// Implementations must be safe for concurrent use and must honour ctx.
type UpstreamDialer interface {
	DialClient(ctx context.Context, principal, tokenID string, node int32) (net.Conn, error)
}

// LocalAPIs answers the APIs the proxy implements itself on authenticated
// connections (delegation tokens, SCRAM admin) instead of forwarding them.
// Implementations must be safe for concurrent use.
type LocalAPIs interface {
	// Ranges lists the API keys and versions answered, which the proxy
	// then advertises in ApiVersions.
	Ranges() []rewrite.Range
	// Handle answers one request parsed at a listed version. principal is
	// "User:<name>"; tokenAuth tells whether the session logged in with a
	// delegation token. Kafka error codes travel in the response; an error
	// is an internal failure and closes the connection.
	Handle(ctx context.Context, principal string, tokenAuth bool, req kmsg.Request) (kmsg.Response, error)
}

// Options configures a Server. Auth, Upstream, Versions, AddrMap,
// Mechanisms and the limits (AuthTimeout, IdleTimeout, MaxReceiveSize,
// MaxRequestSize, MaxConnections) are required: their values come from the
// configuration, which owns the defaults. The other fields are safe at their
// zero value, as documented on each.
type Options struct {
	// TLS terminates TLS on the listener when non-nil (SASL_SSL); nil
	// serves SASL_PLAINTEXT.
	TLS *tls.Config
	// Auth runs SCRAM conversations.
	Auth *sasl.Authenticator
	// Mechanisms enabled, in the order they are listed to clients.
	Mechanisms []sasl.Mechanism
	Upstream   UpstreamDialer
	Versions   VersionSource
	// AddrMap rewrites broker endpoints in responses.
	AddrMap  rewrite.AddrMap
	Registry rewrite.Registry // nil: rewrite.Default()

	Logger  *zap.Logger      // nil: zap.NewNop()
	Metrics Metrics          // nil: NopMetrics()
	Now     func() time.Time // nil: time.Now

	// FailedAuthDelay is connection.failed.authentication.delay.ms: the
	// wait before a failed login is answered and closed; 0 answers at once.
	FailedAuthDelay time.Duration
	// MaxFailedAuthDelay caps the failed-login throttle (backoff.go): the
	// spacing between password checks for a user name or source address
	// that failed recently; 0 means 5s, negative turns the throttle off.
	MaxFailedAuthDelay time.Duration
	AuthTimeout        time.Duration // TLS handshake + SASL
	IdleTimeout        time.Duration // connections.max.idle.ms
	MaxReceiveSize     int           // pre-auth frame cap (sasl.server.max.receive.size)
	MaxRequestSize     int           // post-auth frame cap (socket.request.max.bytes)
	MaxConnections     int
	// MaxConnectionsPerIP is max.connections.per.ip: a connection from a
	// source address that already has this many open is closed at accept,
	// before the TLS handshake; 0: no limit.
	MaxConnectionsPerIP int
	// ConnectionsPerIPOverrides is max.connections.per.ip.overrides: limits
	// for single addresses, replacing MaxConnectionsPerIP (0 refuses the
	// address).
	ConnectionsPerIPOverrides map[netip.Addr]int
	// MaxReauth is connections.max.reauth.ms: every session's lifetime
	// cap (KIP-368); 0 leaves password sessions without a deadline.
	MaxReauth time.Duration
	// MaxInFlight bounds pipelined requests per connection awaiting
	// responses; the client is back-pressured beyond it. 0 means 256.
	MaxInFlight int
	// RouteSNI, when set, picks a connection's broker from its TLS server
	// name (routing.mode sni); names it does not match take the listener's
	// own route.
	RouteSNI func(serverName string) (node int32, ok bool)
	// Local answers the APIs the proxy implements itself; nil: none.
	Local LocalAPIs
	// Protected, when set, names topics no client may write to or
	// administer through the proxy (the shared state topic): such requests
	// are read whole and refused (protected.go).
	Protected *ProtectedTopics
	// Admit, when set, is asked whether a principal whose first login
	// just succeeded (with delegation token tokenID, or "" for a password)
	// may use the proxy (upstream.principal_mode client: whether the
	// brokers grant it a token). An error fails the login with
	// SASL_AUTHENTICATION_FAILED and the error's text as the message.
	Admit func(ctx context.Context, principal, tokenID string) error
	// ListenerName labels logs and metrics; "" means "default".
	ListenerName string

	// sleep waits out the failed-auth delays and the login throttle; tests
	// record the waits here instead of sleeping. nil: a timer.
	sleep func(ctx context.Context, d time.Duration)
}

// withDefaults fills the fields whose zero value stands for a documented
// choice.
func (o Options) withDefaults() Options {
	if o.Registry == nil {
		o.Registry = rewrite.Default()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NopMetrics()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxFailedAuthDelay == 0 {
		o.MaxFailedAuthDelay = 5 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.ListenerName == "" {
		o.ListenerName = "default"
	}
	if o.sleep == nil {
		o.sleep = sleep
	}
	return o
}

// problems lists the required fields that are missing or out of range.
func (o Options) problems() []error {
	var errs []error
	required := func(ok bool, name string) {
		if !ok {
			errs = append(errs, errors.New("proxy: "+name))
		}
	}
	required(o.Auth != nil, "Auth is required")
	required(o.Upstream != nil, "Upstream is required")
	required(o.Versions != nil, "Versions is required")
	required(o.AddrMap != nil, "AddrMap is required")
	required(len(o.Mechanisms) > 0, "Mechanisms is required")
	required(o.FailedAuthDelay >= 0, "FailedAuthDelay must not be negative")
	required(o.AuthTimeout > 0, "AuthTimeout must be positive")
	required(o.IdleTimeout > 0, "IdleTimeout must be positive")
	required(o.MaxReceiveSize > 0, "MaxReceiveSize must be positive")
	required(o.MaxRequestSize > 0, "MaxRequestSize must be positive")
	required(o.MaxConnections > 0, "MaxConnections must be positive")
	required(o.MaxConnectionsPerIP >= 0, "MaxConnectionsPerIP must not be negative")
	return errs
}
