package upstream

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientOpts returns the options of a franz-go client that reaches the
// upstream cluster as the proxy itself: the bootstrap servers, the dial
// timeout, the upstream TLS configuration (read again at every dial, so a
// reloaded certificate applies) and the proxy's own SASL identity
// (upstream.sasl). The state topic's clients use it.
func (d *Dialer) ClientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(d.addrs...), kgo.DialTimeout(d.timeout)}
	s := d.Security
	if s == nil {
		return opts, nil
	}
	if s.TLS != nil {
		tlsFn := s.TLS
		nd := &net.Dialer{Timeout: d.timeout, KeepAlive: d.dialer.KeepAlive}
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			cfg := tlsFn()
			if cfg == nil {
				return nd.DialContext(ctx, network, host)
			}
			cfg = cfg.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(host)
			}
			td := &tls.Dialer{NetDialer: nd, Config: cfg}
			return td.DialContext(ctx, network, host)
		}))
	}
	if s.Default != nil {
		m, err := s.Default.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}
