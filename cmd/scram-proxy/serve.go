package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/localapi"
	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
	"github.com/scram-proxy/scram-proxy/internal/proxy"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
	"github.com/scram-proxy/scram-proxy/internal/telemetry"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// configError is a configuration that did not load or validate; commands
// present it their own way.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }

// parseConfig parses command's configuration flags and loads the
// configuration: flag problems are usageError or errHelp, configuration
// problems configError.
func parseConfig(command string, args []string, stderr io.Writer, environ []string) (config.Config, error) {
	fs := pflag.NewFlagSet(command, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return config.Config{}, errHelp
		}
		return config.Config{}, usageError{err}
	}
	cfg, err := config.Load(fs, environ)
	if err != nil {
		return config.Config{}, configError{err}
	}
	return cfg, nil
}

func serveCommand(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	cfg, err := parseConfig("serve", args, stderr, environ)
	var ce configError
	if errors.As(err, &ce) {
		return usageError{ce.err}
	}
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return usageError{err}
	}
	defer func() { _ = log.Sync() }()
	return serve(ctx, cfg, log, nil)
}

// newLogger builds the process logger from the log settings.
func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.Format {
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}

// serve builds the proxy from cfg and runs it until ctx ends, then drains.
// ready, when non-nil, is called once the listener accepts.
func serve(ctx context.Context, cfg config.Config, log *zap.Logger, ready func()) error {
	metrics := telemetry.NewProm()
	var db *state.DB
	if cfg.State.Dir != "" {
		var err error
		if db, err = state.Open(cfg.State.Dir, state.Options{OnBadRecord: func(r state.BadRecord) {
			metrics.RecordSkipped(r.Kind)
			log.Error("state record does not load; skipped", zap.String("kind", r.Kind), zap.String("key", r.Key), zap.Error(r.Err))
		}}); err != nil {
			return err
		}
		defer db.Close()
	}
	users, reloader, err := loadUsers(cfg, log, metrics)
	if err != nil {
		return err
	}
	var userStore credstore.UserStore = credstore.NewMemUsers()
	phantomKey := make([]byte, 32)
	if db != nil {
		userStore = db
		if phantomKey, err = db.Secret("phantom_scram"); err != nil {
			return err
		}
	} else if _, err := rand.Read(phantomKey); err != nil {
		return err
	}
	admin, err := credstore.NewAdmin(users, userStore, cfg.Authz.SuperUsers)
	if err != nil {
		return err
	}
	var mechs []sasl.Mechanism
	for _, m := range cfg.SASL.Mechanisms {
		mech, _ := sasl.ParseMechanism(m) // validated by config
		mechs = append(mechs, mech)
	}
	dialer, err := upstream.NewDialer(cfg.Upstream.BootstrapServers, cfg.Upstream.DialTimeout)
	if err != nil {
		return err
	}
	dir := upstream.NewDirectory()
	routes, err := buildRoutes(cfg, dir)
	if err != nil {
		return err
	}
	dialer.Dir, dialer.Local = dir, routes.Mode == upstream.ModeSidecar
	if dialer.Security, err = buildUpstreamSecurity(ctx, cfg, log); err != nil {
		return err
	}
	probe := upstream.NewVersionProbe(dialer, 0, nil)
	tokens, err := buildTokens(cfg, db, log)
	if err != nil {
		return err
	}
	go tokens.Run(ctx, func(n int, err error) {
		if err != nil {
			log.Error("delegation token sweep failed", zap.Error(err))
		} else if n > 0 {
			log.Info("expired delegation tokens removed", zap.Int("count", n))
		}
	})
	go reloader.Run(ctx)

	opts := proxy.Options{
		Auth: sasl.NewAuthenticator(sasl.Options{Users: users, Tokens: tokens, RejectExpiredTokens: true,
			PhantomKey: phantomKey}),
		Local:           localapi.New(tokens, admin),
		MaxReauth:       cfg.SASL.MaxReauth,
		Mechanisms:      mechs,
		Upstream:        dialer,
		Versions:        probe,
		AddrMap:         routes,
		Logger:          log,
		Metrics:         metrics,
		FailedAuthDelay: cfg.SASL.FailedAuthDelay,
		AuthTimeout:     cfg.SASL.AuthTimeout,
		IdleTimeout:     cfg.Listener.IdleTimeout,
		MaxReceiveSize:  cfg.SASL.MaxReceiveSize,
		MaxRequestSize:  cfg.Listener.MaxRequestSize,
		MaxConnections:  cfg.Listener.MaxConnections,
		ListenerName:    "client",
		Registry:        rewrite.Default(),
	}
	if cfg.Routing.FetchNodeEndpoints {
		opts.Registry = opts.Registry.WithFetchEndpoints()
	}
	if cfg.SASL.FailedAuthDelay == 0 {
		opts.FailedAuthDelay = -1 // an explicit 0 disables the delay
	}
	if t := cfg.Listener.TLS; t.Enabled {
		w, err := tlsutil.NewWatcher([]string{t.CertFile, t.KeyFile, t.ClientCAFile}, func() (*tls.Config, error) {
			return tlsutil.ServerConfig(t.CertFile, t.KeyFile, t.MinVersion, t.ClientCAFile)
		})
		if err != nil {
			return err
		}
		w.OnReload = reloadLogger(log, "listener certificate", metrics)
		go w.Run(ctx, cfg.Credentials.ReloadInterval)
		opts.TLS = w.ServerConfig()
	}
	if routes.Mode == upstream.ModeSNI {
		opts.RouteSNI = routes.NodeForSNI
	}
	srv, err := proxy.New(opts)
	if err != nil {
		return err
	}
	if routes.Mode != upstream.ModeSidecar {
		// The other modes dial brokers by node id: keep the directory
		// complete even when no client asks for metadata.
		mp := &upstream.MetadataProbe{Dial: dialer, Dir: dir, Interval: 10 * time.Second,
			OnError: func(err error) { log.Warn("upstream metadata probe failed", zap.Error(err)) }}
		go mp.Run(ctx)
	}
	if routes.Mode == upstream.ModePortPerBroker {
		host, _, _ := net.SplitHostPort(cfg.Listener.Address)
		go srv.ServeBrokers(ctx, dir, func(node int32) (net.Listener, error) {
			addr, err := routes.AddrFor(node)
			if err != nil {
				return nil, err
			}
			_, port, _ := net.SplitHostPort(addr)
			return net.Listen("tcp", net.JoinHostPort(host, port))
		}, 10*time.Second)
	}
	ln, err := net.Listen("tcp", cfg.Listener.Address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listener.Address, err)
	}
	log.Info("listening",
		zap.String("address", ln.Addr().String()),
		zap.String("advertised_address", cfg.AdvertisedAddress()),
		zap.Bool("tls", cfg.Listener.TLS.Enabled),
		zap.Strings("mechanisms", cfg.SASL.Mechanisms),
		zap.Strings("upstream", cfg.Upstream.BootstrapServers))

	// Learn the upstream's API versions now, so the first client does not
	// wait for it; a failure here is not fatal (the upstream may start later).
	go func() {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := probe.UpstreamVersions(pctx); err != nil {
			log.Warn("upstream not reachable yet; clients will be refused until it is", zap.Error(err))
		}
	}()

	// The health server outlives the drain, so /readyz says "shutting down".
	healthCtx, stopHealth := context.WithCancel(context.Background())
	defer stopHealth()
	if cfg.Metrics.Address != "" {
		hs, err := telemetry.Listen(cfg.Metrics.Address, metrics.Handler(), readiness(srv, dialer), cfg.Metrics.Pprof)
		if err != nil {
			return err
		}
		log.Info("metrics and health listening", zap.String("address", hs.Addr()))
		go func() {
			if err := hs.Serve(healthCtx); err != nil {
				log.Error("metrics server failed", zap.Error(err))
			}
		}()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	if ready != nil {
		ready()
	}
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, proxy.ErrServerClosed) && ctx.Err() == nil {
			return fmt.Errorf("serve: %w", err)
		}
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("timeout", cfg.Shutdown.Timeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; connections were closed", zap.Error(err))
	}
	log.Info("stopped")
	return nil
}

// reloadLogger reports certificate reloads.
func reloadLogger(log *zap.Logger, what string, metrics *telemetry.Prom) func(error) {
	return func(err error) {
		if err != nil {
			metrics.Reload(what, "error")
			log.Error(what+" not reloaded; keeping the previous one", zap.Error(err))
			return
		}
		metrics.Reload(what, "ok")
		log.Info(what + " reloaded")
	}
}

// buildUpstreamSecurity turns upstream.tls, upstream.sasl and
// upstream.identities into the dialer's security; nil for plaintext without
// SASL. Password files are read once, at start-up.
func buildUpstreamSecurity(ctx context.Context, cfg config.Config, log *zap.Logger) (*upstream.Security, error) {
	u := cfg.Upstream
	sec := &upstream.Security{}
	identity := func(key string, s config.UpstreamSASL) (*upstream.Identity, error) {
		if s.Mechanism == "" {
			return nil, nil
		}
		pw := s.Password
		if s.PasswordFile != "" {
			b, err := os.ReadFile(s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("%s.password_file: %w", key, err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		return &upstream.Identity{Mechanism: s.Mechanism, Username: s.Username, Password: pw}, nil
	}
	var err error
	if sec.Default, err = identity("upstream.sasl", u.SASL); err != nil {
		return nil, err
	}
	for i, m := range u.Identities {
		id, err := identity(fmt.Sprintf("upstream.identities[%d].sasl", i), m.SASL)
		if err != nil {
			return nil, err
		}
		sec.Mappings = append(sec.Mappings, upstream.Mapping{Principals: m.Principals, Identity: *id})
	}
	if t := u.TLS; t.Enabled {
		w, err := tlsutil.NewWatcher([]string{t.CAFile, t.CertFile, t.KeyFile}, func() (*tls.Config, error) {
			return tlsutil.ClientFiles(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify)
		})
		if err != nil {
			return nil, err
		}
		w.OnReload = func(err error) {
			if err != nil {
				log.Error("upstream tls files not reloaded; keeping the previous ones", zap.Error(err))
			} else {
				log.Info("upstream tls files reloaded")
			}
		}
		go w.Run(ctx, cfg.Credentials.ReloadInterval)
		sec.TLS = w.Current
		if t.InsecureSkipVerify {
			log.Warn("upstream.tls.insecure_skip_verify is on: the upstream certificate is not verified")
		}
	}
	if sec.TLS == nil && sec.Default == nil && len(sec.Mappings) == 0 {
		return nil, nil
	}
	return sec, nil
}

// readiness lists /readyz's checks: the listener accepts (not shutting down,
// below max connections) and the upstream answers a TCP connect (cached
// for a few seconds). Credentials and state are loaded before the listener
// opens, so a running proxy has them.
func readiness(srv *proxy.Server, d *upstream.Dialer) []telemetry.Check {
	var mu sync.Mutex
	var last time.Time
	var lastErr error
	return []telemetry.Check{
		{Name: "listener", Fn: func(context.Context) error {
			if !srv.Ready() {
				return errors.New("shutting down or at max connections")
			}
			return nil
		}},
		{Name: "upstream", Fn: func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) < 3*time.Second {
				return lastErr
			}
			c, err := d.Dial(ctx, "", -1)
			if err == nil {
				c.Close()
			}
			last, lastErr = time.Now(), err
			return err
		}},
	}
}

// buildRoutes turns the routing settings into the address map.
func buildRoutes(cfg config.Config, dir *upstream.Directory) (*upstream.Routes, error) {
	r := cfg.Routing
	routes := &upstream.Routes{Mode: upstream.Mode(r.Mode), Dir: dir, Template: r.AdvertisedAddressTemplate,
		Brokers: map[int32]string{}, Host: r.AdvertisedHost, PortBase: r.BrokerPortBase, Ports: map[int32]int{},
		SNIPattern: r.SNIHostPattern}
	if routes.Mode == upstream.ModeSidecar && routes.Template == "" && len(r.Brokers) == 0 {
		routes.Template = cfg.AdvertisedAddress() // one broker behind the proxy
	}
	for k, v := range r.Brokers {
		n, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("routing.brokers: %w", err)
		}
		routes.Brokers[int32(n)] = v
	}
	for k, v := range r.BrokerPorts {
		n, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("routing.broker_ports: %w", err)
		}
		routes.Ports[int32(n)] = v
	}
	if routes.Mode == upstream.ModeSNI {
		_, port, _ := net.SplitHostPort(cfg.AdvertisedAddress())
		routes.SNIPort, _ = strconv.Atoi(port)
	}
	return routes, nil
}

// buildTokens builds the delegation-token manager over the state store. With
// no key configured the manager is disabled and the token APIs answer 61, as
// a Kafka broker without a key does.
func buildTokens(cfg config.Config, db *state.DB, log *zap.Logger) (*dtoken.Manager, error) {
	if !cfg.Tokens.Enabled() {
		return dtoken.New(dtoken.Options{SuperUsers: cfg.Authz.SuperUsers})
	}
	key := cfg.Tokens.SecretKey
	if key == "" {
		key = cfg.Tokens.MasterKey
	}
	if cfg.Tokens.MasterKeyFile != "" {
		b, err := os.ReadFile(cfg.Tokens.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("delegation_tokens.master_key_file: %w", err)
		}
		key = strings.TrimRight(string(b), "\r\n")
		if key == "" {
			return nil, errors.New("delegation_tokens.master_key_file: the file is empty")
		}
	}
	m, err := dtoken.New(dtoken.Options{
		SecretKey:     key,
		MaxLifetime:   cfg.Tokens.MaxLifetime,
		ExpiryTime:    cfg.Tokens.ExpiryTime,
		CheckInterval: cfg.Tokens.ExpiryCheckInterval,
		MaxPerOwner:   cfg.Tokens.MaxPerOwner,
		Store:         db, // validation guarantees state.dir when tokens are on
		SuperUsers:    cfg.Authz.SuperUsers,
	})
	if err != nil {
		return nil, err
	}
	log.Info("delegation tokens enabled", zap.String("state_dir", cfg.State.Dir), zap.Int("tokens", m.Len()))
	return m, nil
}

// loadUsers performs the first load of the credentials file and secrets
// directory (fatal when broken) and returns the reloader that keeps them
// current, logging every reload by user count and name, never a secret.
func loadUsers(cfg config.Config, log *zap.Logger, metrics *telemetry.Prom) (*credstore.Store, *credstore.Reloader, error) {
	store := credstore.NewStore(nil)
	r := &credstore.Reloader{
		Store:      store,
		File:       cfg.Credentials.File,
		SecretsDir: cfg.Credentials.SecretsDir,
		Interval:   cfg.Credentials.ReloadInterval,
		Rand:       rand.Reader,
		OnLoad: func(src credstore.Source, users int, warns []credstore.Warning, err error) {
			if err != nil {
				metrics.Reload(src.String(), "error")
				log.Error("credentials not reloaded; keeping the previous users", zap.String("source", src.String()), zap.Error(err))
				return
			}
			metrics.Reload(src.String(), "ok")
			for _, w := range warns {
				log.Warn(w.Message, zap.String("user", w.User), zap.String("source", src.String()))
			}
			log.Info("credentials loaded", zap.String("source", src.String()), zap.Int("users", users))
		},
	}
	if err := r.Load(); err != nil {
		return nil, nil, err
	}
	return store, r, nil
}
