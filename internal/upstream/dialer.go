package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Dialer opens plaintext TCP connections upstream: to a given broker by
// node id through the Directory, or to the bootstrap servers in order. It is
// safe for concurrent use.
type Dialer struct {
	addrs   []string
	timeout time.Duration
	dialer  net.Dialer
	// Dir resolves node ids; nil, or Local, sends every connection to the
	// bootstrap servers (the sidecar's local broker).
	Dir   *Directory
	Local bool
	// Security adds TLS and SASL (per client principal); nil: plaintext.
	Security *Security
}

// NewDialer returns a Dialer for addrs (host:port each). timeout bounds each
// attempt; 0 means 10 s.
func NewDialer(addrs []string, timeout time.Duration) (*Dialer, error) {
	if len(addrs) == 0 {
		return nil, errors.New("upstream: no bootstrap servers")
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Dialer{addrs: append([]string(nil), addrs...), timeout: timeout,
		dialer: net.Dialer{KeepAlive: 30 * time.Second}}, nil
}

// Dial connects to broker node, or with node -1 to the first reachable
// bootstrap server, then secures the connection (TLS, and SASL as the
// identity mapped to principal; "" is the proxy's own probes).
func (d *Dialer) Dial(ctx context.Context, principal string, node int32) (net.Conn, error) {
	return d.dial(ctx, login{principal: principal}, node)
}

// DialClient is Dial for a client session: tokenID is the delegation token
// the client logged in with ("" for a password login), which the
// connection logs in with upstream when it is a broker token
// (upstream.principal_mode client with delegation_tokens.store broker).
func (d *Dialer) DialClient(ctx context.Context, principal, tokenID string, node int32) (net.Conn, error) {
	return d.dial(ctx, login{principal: principal, tokenID: tokenID}, node)
}

func (d *Dialer) dial(ctx context.Context, who login, node int32) (net.Conn, error) {
	if node >= 0 && d.Dir != nil && !d.Local {
		addr, ok := d.Dir.Addr(node)
		if !ok {
			return nil, fmt.Errorf("dial upstream: node %d is not known (yet)", node)
		}
		return d.secured(ctx, addr, who)
	}
	var errs []error
	for _, addr := range d.addrs {
		c, err := d.secured(ctx, addr, who)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (d *Dialer) dialOne(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := d.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

// Admit tells whether principal may use the proxy: in
// upstream.principal_mode client, a principal the brokers refuse a token
// for may not (a *RefusedError). Transport failures admit: the principal's
// upstream dials report them.
func (d *Dialer) Admit(ctx context.Context, principal, tokenID string) error {
	if !d.Security.usesToken(principal) || d.Security.forwardsLoginToken(login{principal: principal, tokenID: tokenID}) {
		return nil
	}
	_, err := d.Security.Tokens.Identity(ctx, principal)
	if re := (*RefusedError)(nil); errors.As(err, &re) {
		return err
	}
	return nil
}

// tokenPropagation is how long a new token may be unknown to a broker: the
// brokers learn it from the metadata log, each in its own time.
const tokenPropagation = 3 * time.Second

// secured dials addr and applies TLS and SASL for principal. A token login
// the broker refuses is tried again: a new token may not have reached that
// broker yet, and an older one was expired or removed at the brokers, so it
// is replaced.
func (d *Dialer) secured(ctx context.Context, addr string, who login) (net.Conn, error) {
	for attempt := 1; ; attempt++ {
		c, err := d.securedOnce(ctx, addr, who)
		var ae *authError
		if err == nil || attempt == 5 || !errors.As(err, &ae) || !ae.id.Token {
			return c, err
		}
		if ae.loginToken {
			if attempt == 2 {
				return c, err // the client's own token: retried once, for a broker that had not learned it yet
			}
		} else if age, ok := d.Security.Tokens.Age(who.principal, ae.id.Username); ok && age > tokenPropagation {
			d.Security.Tokens.Forget(who.principal, ae.id.Username)
		}
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			return nil, err
		}
	}
}

func (d *Dialer) securedOnce(ctx context.Context, addr string, who login) (net.Conn, error) {
	c, err := d.dialOne(ctx, addr)
	if err != nil || d.Security == nil {
		return c, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	sc, _, err := d.Security.secure(ctx, c, addr, who)
	if err != nil {
		c.Close()
		return nil, err
	}
	return sc, nil
}
