package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/demo"
)

// demoCommand runs the real proxy, configured through the same Config as
// `serve`, in front of an in-process kfake cluster.
func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("demo", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9096", "proxy listener address")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "scram-proxy-demo"), "where to write the CA, certificate, users file and client.properties")
	level := fs.String("log-level", "info", "log level")
	metricsAddr := fs.String("metrics-address", "", "serve /metrics, /healthz and /readyz here (e.g. 127.0.0.1:9404)")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return errHelp
		}
		return usageError{err}
	}
	env, err := demo.Start(demo.Options{Dir: *dir, ListenAddr: *listen})
	if err != nil {
		return err
	}
	defer env.Close()
	if err := os.WriteFile(filepath.Join(*dir, "client.properties"), []byte(env.ClientProperties()), 0o600); err != nil {
		return err
	}

	cfg := config.Defaults()
	cfg.Listener.Address = *listen
	cfg.Listener.AdvertisedAddress = env.ClientAddr()
	cfg.Listener.TLS.CertFile, cfg.Listener.TLS.KeyFile = env.CertFile, env.KeyFile
	cfg.SASL.Mechanisms = []string{"SCRAM-SHA-512", "SCRAM-SHA-256"}
	cfg.Credentials.File = env.UsersFile
	cfg.Upstream.BootstrapServers = []string{env.Upstream}
	cfg.Tokens.SecretKey = env.TokenKey
	cfg.State.Dir = filepath.Join(*dir, "state")
	cfg.Authz.SuperUsers = []string{"User:" + env.User}
	cfg.Log = config.Log{Level: *level, Format: "console"}
	cfg.Metrics.Address = *metricsAddr
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return usageError{err}
	}
	defer func() { _ = log.Sync() }()
	return serve(ctx, cfg, log, func() { fmt.Fprint(stdout, env.Banner()) })
}
