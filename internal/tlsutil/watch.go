package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/poll"
)

// Watcher holds a TLS configuration built from files and rebuilds it when
// any of them changes (polling stat: Kubernetes swaps mounted secrets via
// symlinks). A failed rebuild keeps the previous configuration. New
// handshakes use the current one; established connections are untouched.
// Current is safe for concurrent use; Run is called once.
type Watcher struct {
	files []string
	build func() (*tls.Config, error)
	cur   atomic.Pointer[tls.Config]
	print string
	// OnReload hears of every rebuild attempt after the first.
	OnReload func(error)
}

// NewWatcher builds the first configuration (an error is fatal).
func NewWatcher(files []string, build func() (*tls.Config, error)) (*Watcher, error) {
	w := &Watcher{files: files, build: build}
	cfg, err := build()
	if err != nil {
		return nil, err
	}
	w.cur.Store(cfg)
	w.print = w.fingerprint()
	return w, nil
}

// Current returns the configuration in force.
func (w *Watcher) Current() *tls.Config { return w.cur.Load() }

// ServerConfig returns a listener config that picks up rotations: each
// handshake takes the current configuration.
func (w *Watcher) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return w.Current(), nil },
	}
}

func (w *Watcher) fingerprint() string {
	var b strings.Builder
	for _, f := range w.files {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString(f + ":missing;")
		}
	}
	return b.String()
}

// Run polls every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	poll.Every(ctx, interval, func() {
		p := w.fingerprint()
		if p == w.print {
			return
		}
		w.print = p
		cfg, err := w.build()
		if err == nil {
			w.cur.Store(cfg)
		}
		if w.OnReload != nil {
			w.OnReload(err)
		}
	})
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}

// ClientFiles builds an upstream client config: trust caFile (or the system
// roots when empty), present certFile/keyFile when set. Every problem is
// returned, joined, each naming the file's role as the configuration does
// (ca_file, cert_file, key_file).
func ClientFiles(caFile, certFile, keyFile, serverName string, insecureSkipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecureSkipVerify} //nolint:gosec // explicit unsafe option
	var errs []error
	if caFile != "" {
		pool, err := LoadPool(caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca_file: %w", err))
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}
