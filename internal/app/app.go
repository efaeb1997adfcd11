package app

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/localapi"
	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
	"github.com/scram-proxy/scram-proxy/internal/proxy"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
	"github.com/scram-proxy/scram-proxy/internal/telemetry"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// Options is what the process supplies besides the configuration.
type Options struct {
	// Logger receives start-up and run-time logs; nil discards them.
	Logger *zap.Logger
	// Check builds for check-config: nothing on disk changes (state.dir is
	// inspected read-only), listeners are bound only to see that they can
	// be and released at once, and an address or state database already
	// held by another process (a running proxy) is logged as a warning,
	// not refused. Such an App cannot Run.
	Check bool

	_ struct{}
}

// App is the whole process built from a Config: every file loaded, every
// listener bound, no goroutine started. Run starts it; Close releases what
// Build opened. Not for concurrent use.
type App struct {
	cfg     config.Config
	check   bool
	log     *zap.Logger
	metrics *telemetry.Prom

	db *state.DB
	// stateLog is the shared state (state.backend kafka), read with
	// stateKeys; restored in Run, which builds tokens, admin and srv then.
	stateLog      *statelog.Log
	stateKeys     *statelog.Keyring
	stateRestored atomic.Bool
	res           config.Resolved // for the build Run completes
	listenerTLS   *tls.Config
	serving       servingServer // srv once Run serves it, for readiness
	admin         *credstore.Admin
	users         *credstore.Store
	reloader      *credstore.Reloader
	tokens        *dtoken.Manager
	// brokerTokens is the brokers' token store (delegation_tokens.store:
	// broker); nil with store proxy.
	brokerTokens *upstream.BrokerTokens
	dialer       *upstream.Dialer
	dir          *upstream.Directory
	routes       *upstream.Routes
	probe        *upstream.VersionProbe
	watchers     []*tlsutil.Watcher // rebuilt every credentials.reload_interval
	srv          *proxy.Server

	ln     net.Listener // the client listener
	health []httpServer // metrics and health; profiling
	closed bool
}

// httpServer is one of the metrics, health and profiling listeners; what
// names what it serves, for the logs.
type httpServer struct {
	*telemetry.Server
	what string
}

// Build loads and checks everything cfg names and builds the process
// without starting it. It returns every problem, joined, each naming its
// configuration key; on error nothing stays open.
func Build(cfg config.Config, o Options) (*App, error) {
	// Validate again: a Config built in code (demo, tests) skipped Load.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, check: o.Check, log: o.Logger, metrics: telemetry.NewProm()}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	res, err := cfg.Resolve()
	fail(err)
	a.res = res
	fail(a.openState())
	fail(a.loadUsers())
	fail(a.buildUpstream(res))
	if a.sharedState() && len(errs) == 0 {
		fail(a.openStateLog())
	}
	// With the shared state, the token manager, the SCRAM admin and the
	// server are built in Run, from the restored topic.
	var auth *sasl.Authenticator
	var local proxy.LocalAPIs
	if !a.sharedState() {
		auth, local, err = a.buildAuth(res.TokenKeys)
		fail(err)
	}
	a.listenerTLS, err = a.buildListenerTLS()
	fail(err)
	if len(errs) == 0 && !a.sharedState() {
		fail(a.buildServer(auth, local, a.listenerTLS, res.ConnectionsPerIP))
	}
	if len(errs) == 0 {
		fail(a.listen())
	}
	if err := errors.Join(errs...); err != nil {
		_ = a.Close()
		return nil, err
	}
	if a.check {
		_ = a.Close()
	}
	return a, nil
}

// Close releases what Build opened (listeners, the state database). Run
// calls it on return; calling it again does nothing.
func (a *App) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	var errs []error
	if a.ln != nil {
		errs = append(errs, a.ln.Close())
	}
	for _, h := range a.health {
		errs = append(errs, h.Close())
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	if a.stateLog != nil {
		a.stateLog.Close()
	}
	return errors.Join(errs...)
}

// Summary describes what was built, for check-config's success line.
func (a *App) Summary() string {
	return fmt.Sprintf("listener %s (advertised %s), %d users, upstream %v, routing %s",
		a.cfg.Listener.Address, a.cfg.AdvertisedAddress(), a.users.Users(), a.cfg.Upstream.BootstrapServers, a.cfg.Routing.Mode)
}

// openState opens state.dir (read-only for a check). A database a running
// proxy holds cannot be inspected: a check says so and goes on without it.
func (a *App) openState() error {
	if a.cfg.State.Shared() {
		return a.loadStateKeys()
	}
	dir := a.cfg.State.Dir
	if dir == "" {
		return nil
	}
	o := state.Options{OnBadRecord: func(r state.BadRecord) {
		a.metrics.RecordSkipped(r.Kind)
		a.log.Error("state record does not load; skipped", zap.String("kind", r.Kind), zap.String("key", r.Key), zap.Error(r.Err))
	}}
	var err error
	if a.check {
		a.db, err = state.Inspect(dir, o)
		if errors.Is(err, state.ErrInUse) {
			a.log.Warn("not checked: state.dir's users and tokens (the database is in use)", zap.Error(err))
			return nil
		}
	} else {
		a.db, err = state.Open(dir, o)
	}
	return err
}

// loadUsers performs the first load of credentials.file and
// credentials.secrets_dir (fatal when broken: Build returns the error) and
// keeps the reloader that keeps them current, logging every reload by user
// count, never a secret.
func (a *App) loadUsers() error {
	a.users = credstore.NewStore(nil)
	first := true
	a.reloader = &credstore.Reloader{
		Store:      a.users,
		File:       a.cfg.Credentials.File,
		SecretsDir: a.cfg.Credentials.SecretsDir,
		Interval:   a.cfg.Credentials.ReloadInterval,
		Rand:       rand.Reader,
		OnLoad: func(src credstore.Source, users int, warns []credstore.Warning, err error) {
			if err != nil {
				if first {
					return // returned by Build, not a reload
				}
				a.metrics.Reload(src.String(), "error")
				a.log.Error("credentials not reloaded; keeping the previous users", zap.String("source", src.String()), zap.Error(err))
				return
			}
			a.metrics.Reload(src.String(), "ok")
			for _, w := range warns {
				a.log.Warn(w.Message, zap.String("user", w.User), zap.String("source", src.String()))
			}
			a.log.Info("credentials loaded", zap.String("source", src.String()), zap.Int("users", users))
		},
	}
	err := a.reloader.Load()
	first = false
	return err
}

// buildAuth builds the SCRAM authenticator over the credential layers and
// the token manager, and the APIs the proxy answers itself (delegation
// tokens, SCRAM admin). With no token key the manager is disabled and the
// token APIs answer 61, as a Kafka broker without a key does. With
// delegation_tokens.store broker the brokers' tokens serve both instead
// (the manager stays disabled).
func (a *App) buildAuth(tokenKeys []config.ResolvedTokenKey) (*sasl.Authenticator, proxy.LocalAPIs, error) {
	var errs []error
	var userStore credstore.UserStore = credstore.NewMemUsers()
	var tokenStore dtoken.TokenStore // nil: in memory
	phantomKey := make([]byte, 32)
	var secrets interface{ Secret(string) ([]byte, error) }
	switch {
	case a.stateLog != nil:
		userStore, tokenStore, secrets = a.stateLog, a.stateLog, a.stateLog
	case a.db != nil:
		userStore, tokenStore, secrets = a.db, a.db, a.db
	}
	if secrets != nil {
		var err error
		if phantomKey, err = secrets.Secret("phantom_scram"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.stateKey(), err))
		}
	} else if _, err := rand.Read(phantomKey); err != nil {
		errs = append(errs, err)
	}
	admin, err := credstore.NewAdmin(a.users, userStore, a.cfg.Authz.SuperUsers)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", a.stateKey(), err))
	}
	a.admin = admin
	t := a.cfg.Tokens
	o := dtoken.Options{SuperUsers: a.cfg.Authz.SuperUsers}
	if len(tokenKeys) > 0 && !t.BrokerStore() {
		o = dtoken.Options{MaxLifetime: t.MaxLifetime, ExpiryTime: t.ExpiryTime, CheckInterval: t.ExpiryCheckInterval,
			MaxPerOwner: t.MaxPerOwner, SuperUsers: a.cfg.Authz.SuperUsers, KeyTokens: a.metrics.DelegationTokens}
		for _, k := range tokenKeys {
			o.Keys = append(o.Keys, dtoken.Key{ID: k.ID, Secret: k.Secret})
		}
		// Validation requires a state backend with tokens; the store is
		// nil only in a check (that found state.db in use, or of the
		// shared state, which a check does not read).
		o.Store = tokenStore
	}
	if a.tokens, err = dtoken.New(o); err != nil { // super users are validated: the stored tokens failed
		errs = append(errs, fmt.Errorf("%s: %w", a.stateKey(), err))
	} else if a.tokens.Enabled() {
		a.log.Info("delegation tokens loaded", zap.Int("tokens", a.tokens.Len()), zap.String("minting_key", tokenKeys[0].ID),
			zap.Any("tokens_by_key", a.tokens.TokensByKey()))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var tokens sasl.TokenLookup = a.tokens
	local := localapi.New(a.tokens, admin)
	if a.brokerTokens != nil {
		tokens = a.brokerTokens
		local = local.WithBrokerTokens(a.brokerTokens, a.cfg.Authz.SuperUsers)
	}
	so := sasl.Options{Users: a.users, Tokens: tokens, RejectExpiredTokens: true, PhantomKey: phantomKey}
	if l := a.stateLog; l != nil {
		// The fleet's key: the topic's latest, should two proxies have
		// created it at once (a fleet's first start).
		so.PhantomKeyFunc = func() []byte { return l.HeldSecret("phantom_scram", phantomKey) }
	}
	return sasl.NewAuthenticator(so), local, nil
}

// buildListenerTLS loads the listener's certificate, key and client CA;
// the watcher rebuilds them when the files change.
func (a *App) buildListenerTLS() (*tls.Config, error) {
	t := a.cfg.Listener.TLS
	if !t.Enabled {
		return nil, nil
	}
	w, err := tlsutil.NewWatcher([]string{t.CertFile, t.KeyFile, t.ClientCAFile}, func() (*tls.Config, error) {
		return tlsutil.ServerConfig(t.CertFile, t.KeyFile, t.MinVersion, t.ClientCAFile)
	})
	if err != nil {
		return nil, inSection("listener.tls", err)
	}
	w.OnReload = a.reloadLogger("listener certificate")
	a.watchers = append(a.watchers, w)
	return w.ServerConfig(), nil
}

// reloadLogger reports certificate reloads.
func (a *App) reloadLogger(what string) func(error) {
	return func(err error) {
		if err != nil {
			a.metrics.Reload(what, "error")
			a.log.Error(what+" not reloaded; keeping the previous one", zap.Error(err))
			return
		}
		a.metrics.Reload(what, "ok")
		a.log.Info(what + " reloaded")
	}
}

// buildServer builds the proxy server from the parts built before.
func (a *App) buildServer(auth *sasl.Authenticator, local proxy.LocalAPIs, listenerTLS *tls.Config, perIP map[netip.Addr]int) error {
	c := a.cfg
	var mechs []sasl.Mechanism
	for _, m := range c.SASL.Mechanisms {
		mech, _ := sasl.ParseMechanism(m) // validated by config
		mechs = append(mechs, mech)
	}
	registry := rewrite.Default()
	if c.Routing.FetchNodeEndpoints {
		registry = registry.WithFetchEndpoints()
	}
	var protected *proxy.ProtectedTopics
	if c.State.Shared() {
		registry = registry.WithHiddenTopics(c.State.Kafka.Topic)
		protected = &proxy.ProtectedTopics{Names: []string{c.State.Kafka.Topic}}
		if a.stateLog != nil {
			protected.IDs = [][16]byte{a.stateLog.TopicID()}
		}
	}
	srv, err := proxy.New(proxy.Options{
		TLS:                       listenerTLS,
		Auth:                      auth,
		Mechanisms:                mechs,
		Upstream:                  a.dialer,
		Versions:                  a.probe,
		AddrMap:                   a.routes,
		Registry:                  registry,
		Logger:                    a.log,
		Metrics:                   a.metrics,
		FailedAuthDelay:           c.SASL.FailedAuthDelay,
		MaxFailedAuthDelay:        throttleCap(c.SASL.MaxFailedAuthDelay),
		AuthTimeout:               c.SASL.AuthTimeout,
		IdleTimeout:               c.Listener.IdleTimeout,
		MaxReceiveSize:            c.SASL.MaxReceiveSize,
		MaxRequestSize:            c.Listener.MaxRequestSize,
		MaxConnections:            c.Listener.MaxConnections,
		MaxConnectionsPerIP:       c.Listener.MaxConnectionsPerIP,
		ConnectionsPerIPOverrides: perIP,
		MaxReauth:                 c.SASL.MaxReauth,
		RouteSNI:                  a.routes.SNIRouter(),
		Local:                     local,
		Protected:                 protected,
		ListenerName:              "client",
		Admit:                     a.admit(),
	})
	a.srv = srv
	return err
}

// inSection prefixes each joined problem with its configuration section:
// tlsutil names a file by its key within the section ("cert_file: ...").
func inSection(section string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, p := range j.Unwrap() {
			out = append(out, inSection(section, p))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s.%w", section, err)
}

// throttleCap maps sasl.max_failed_auth_delay to proxy.Options, where 0
// would mean the default: the configuration's 0 turns the throttle off.
func throttleCap(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
