package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

// checkConfigCommand validates a configuration the way `serve` would use it
// (keys, values, certificate, credentials, token key file) without
// listening, and prints every problem. Exit 0: usable; 2: problems.
func checkConfigCommand(_ context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	cfg, err := parseConfig("check-config", args, stderr, environ)
	var ce configError
	if errors.As(err, &ce) {
		return checkFailed(stdout, ce.err)
	}
	if err != nil {
		return err
	}
	var errs []error
	if t := cfg.Listener.TLS; t.Enabled {
		if _, err := tlsutil.ServerConfig(t.CertFile, t.KeyFile, t.MinVersion); err != nil {
			errs = append(errs, fmt.Errorf("listener.tls: %w", err))
		}
	}
	r := &credstore.Reloader{Store: credstore.NewStore(nil), File: cfg.Credentials.File,
		SecretsDir: cfg.Credentials.SecretsDir, Rand: rand.Reader}
	if err := r.Load(); err != nil {
		errs = append(errs, err)
	}
	if f := cfg.Tokens.MasterKeyFile; f != "" {
		if b, err := os.ReadFile(f); err != nil {
			errs = append(errs, fmt.Errorf("delegation_tokens.master_key_file: %w", err))
		} else if len(b) == 0 {
			errs = append(errs, errors.New("delegation_tokens.master_key_file: the file is empty"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return checkFailed(stdout, err)
	}
	fmt.Fprintf(stdout, "configuration OK: listener %s (advertised %s), %d users, upstream %v, routing %s\n",
		cfg.Listener.Address, cfg.AdvertisedAddress(), r.Store.Users(), cfg.Upstream.BootstrapServers, cfg.Routing.Mode)
	return nil
}

// checkFailed prints every problem, one per line, and maps to exit code 2.
func checkFailed(w io.Writer, err error) error {
	fmt.Fprintln(w, "configuration has problems:")
	for _, e := range flatten(err) {
		fmt.Fprintln(w, "  - "+e.Error())
	}
	return reportedError{}
}

func flatten(err error) []error {
	var multi interface{ Unwrap() []error }
	if !errors.As(err, &multi) {
		return []error{err}
	}
	var out []error
	for _, e := range multi.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
