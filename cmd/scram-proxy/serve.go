package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/proxy"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// shutdownTimeout bounds the drain after SIGTERM.
const shutdownTimeout = 30 * time.Second

func serveCommand(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	cfg, err := config.Load(fs, environ)
	if err != nil {
		return usageError{err}
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
	users, err := loadUsers(cfg.Credentials.File, log)
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
	addrMap, err := upstream.NewFixedAddr(cfg.AdvertisedAddress())
	if err != nil {
		return err
	}
	probe := upstream.NewVersionProbe(dialer, 0, nil)
	tokens, closeTokens, err := buildTokens(cfg, log)
	if err != nil {
		return err
	}
	defer closeTokens()
	authOpts := sasl.Options{Users: users, RejectExpiredTokens: true}
	var local []proxy.LocalAPI
	if tokens != nil {
		authOpts.Tokens = tokens
		api := dtoken.API{M: tokens}
		for _, r := range api.Ranges() {
			local = append(local, proxy.LocalAPI{Key: r[0], Min: r[1], Max: r[2], Handler: api})
		}
		go tokens.Run(ctx, func(n int, err error) {
			if err != nil {
				log.Error("delegation token sweep failed", zap.Error(err))
			} else if n > 0 {
				log.Info("expired delegation tokens removed", zap.Int("count", n))
			}
		})
	}
	opts := proxy.Options{
		Auth:            sasl.NewAuthenticator(authOpts),
		Local:           local,
		MaxReauth:       cfg.SASL.MaxReauth,
		Mechanisms:      mechs,
		Upstream:        dialer,
		Versions:        probe,
		AddrMap:         addrMap,
		Logger:          log,
		FailedAuthDelay: cfg.SASL.FailedAuthDelay,
		AuthTimeout:     cfg.SASL.AuthTimeout,
		IdleTimeout:     cfg.Listener.IdleTimeout,
		MaxReceiveSize:  cfg.SASL.MaxReceiveSize,
		MaxRequestSize:  cfg.Listener.MaxRequestSize,
		MaxConnections:  cfg.Listener.MaxConnections,
		ListenerName:    "client",
	}
	if cfg.SASL.FailedAuthDelay == 0 {
		opts.FailedAuthDelay = -1 // an explicit 0 disables the delay
	}
	if cfg.Listener.TLS.Enabled {
		if opts.TLS, err = tlsutil.ServerConfig(cfg.Listener.TLS.CertFile, cfg.Listener.TLS.KeyFile, cfg.Listener.TLS.MinVersion); err != nil {
			return err
		}
	}
	srv, err := proxy.New(opts)
	if err != nil {
		return err
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
	log.Info("shutting down", zap.Duration("timeout", shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; connections were closed", zap.Error(err))
	}
	log.Info("stopped")
	return nil
}

// buildTokens opens the state store and the delegation-token manager when a
// key is configured; it returns nil when tokens are disabled. Token APIs are
// still answered then (error 61), as by a Kafka broker without a key.
func buildTokens(cfg config.Config, log *zap.Logger) (*dtoken.Manager, func(), error) {
	if !cfg.Tokens.Enabled() {
		m, err := dtoken.New(dtoken.Options{SuperUsers: cfg.Authz.SuperUsers})
		return m, func() {}, err
	}
	key := cfg.Tokens.SecretKey
	if key == "" {
		key = cfg.Tokens.MasterKey
	}
	if cfg.Tokens.MasterKeyFile != "" {
		b, err := os.ReadFile(cfg.Tokens.MasterKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("delegation_tokens.master_key_file: %w", err)
		}
		key = strings.TrimRight(string(b), "\r\n")
		if key == "" {
			return nil, nil, errors.New("delegation_tokens.master_key_file: the file is empty")
		}
	}
	db, err := state.Open(cfg.State.Dir)
	if err != nil {
		return nil, nil, err
	}
	m, err := dtoken.New(dtoken.Options{
		SecretKey:     key,
		MaxLifetime:   cfg.Tokens.MaxLifetime,
		ExpiryTime:    cfg.Tokens.ExpiryTime,
		CheckInterval: cfg.Tokens.ExpiryCheckInterval,
		Store:         db,
		SuperUsers:    cfg.Authz.SuperUsers,
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	log.Info("delegation tokens enabled", zap.String("state_dir", cfg.State.Dir), zap.Int("tokens", m.Len()))
	return m, func() { _ = db.Close() }, nil
}

// loadUsers reads the credentials file into a store, logging its warnings
// (development passwords, unusable iteration counts) by user name only.
func loadUsers(path string, log *zap.Logger) (*credstore.Store, error) {
	snap, warns, err := credstore.LoadFile(path, credstore.FileOptions{Rand: rand.Reader})
	if err != nil {
		return nil, err
	}
	for _, w := range warns {
		log.Warn(w.Message, zap.String("user", w.User), zap.String("file", path))
	}
	log.Info("credentials loaded", zap.String("file", path), zap.Int("users", snap.Users()))
	return credstore.NewStore(snap), nil
}
