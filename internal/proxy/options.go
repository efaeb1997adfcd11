package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// UpstreamDialer opens the upstream connection of one authenticated client
// session: to broker node, or to any bootstrap broker when node is -1.
// principal is "User:<name>", for identity mapping. Implementations must be
// safe for concurrent use and must honour ctx.
type UpstreamDialer interface {
	Dial(ctx context.Context, principal string, node int32) (net.Conn, error)
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

// Options configures a Server. Zero values take the documented defaults in
// withDefaults; Auth, Upstream and Versions are required.
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
	Registry rewrite.Registry // default rewrite.Default()

	Logger  *zap.Logger // default zap.NewNop()
	Metrics Metrics     // default NopMetrics()
	Now     func() time.Time

	FailedAuthDelay time.Duration // default 100ms (connection.failed.authentication.delay.ms)
	// MaxFailedAuthDelay caps the per-user and per-source-IP backoff that
	// doubles the delay on each repeated failure; default 5s.
	MaxFailedAuthDelay time.Duration
	AuthTimeout        time.Duration // TLS handshake + SASL; default 10s
	IdleTimeout        time.Duration // default 10m (connections.max.idle.ms)
	MaxReceiveSize     int           // pre-auth frame cap; default 512 KiB (sasl.server.max.receive.size)
	MaxRequestSize     int           // post-auth frame cap; default 100 MiB (socket.request.max.bytes)
	MaxConnections     int           // default 10000
	// MaxReauth is connections.max.reauth.ms: every session's lifetime
	// cap (KIP-368); 0 leaves password sessions without a deadline.
	MaxReauth time.Duration
	// MaxInFlight bounds pipelined requests per connection awaiting
	// responses; the client is back-pressured beyond it. Default 256.
	MaxInFlight int
	// RouteSNI, when set, picks a connection's broker from its TLS server
	// name (routing.mode sni); names it does not match take the listener's
	// own route.
	RouteSNI func(serverName string) (node int32, ok bool)
	// Local answers the APIs the proxy implements itself; nil: none.
	Local LocalAPIs
	// ListenerName labels logs and metrics.
	ListenerName string
}

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
	if len(o.Mechanisms) == 0 {
		o.Mechanisms = []sasl.Mechanism{sasl.ScramSHA512}
	}
	if o.FailedAuthDelay < 0 {
		o.FailedAuthDelay = 0
	} else if o.FailedAuthDelay == 0 {
		o.FailedAuthDelay = 100 * time.Millisecond
	}
	if o.MaxFailedAuthDelay <= 0 {
		o.MaxFailedAuthDelay = 5 * time.Second
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.MaxReceiveSize <= 0 {
		o.MaxReceiveSize = 512 << 10
	}
	if o.MaxRequestSize <= 0 {
		o.MaxRequestSize = 100 << 20
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 10000
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.ListenerName == "" {
		o.ListenerName = "default"
	}
	return o
}
