package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Identity is the SASL identity the proxy presents upstream. Its String
// redacts the password.
type Identity struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username  string
	Password  string
	// Token: Username is a delegation token id and Password its HMAC in
	// base64 (SCRAM with tokenauth=true).
	Token bool

	_ struct{}
}

func (i Identity) String() string { return i.Mechanism + ":" + i.Username + ":REDACTED" }

// mechanism builds franz-go's client side of the SASL mechanism.
func (i Identity) mechanism() (sasl.Mechanism, error) {
	switch i.Mechanism {
	case "PLAIN":
		return plain.Auth{User: i.Username, Pass: i.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: i.Username, Pass: i.Password, IsToken: i.Token}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: i.Username, Pass: i.Password, IsToken: i.Token}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("upstream sasl: unsupported mechanism %q", i.Mechanism)
}

// Mapping sends client principals matching any of Principals (globs:
// "User:team-a-*") upstream as Identity.
type Mapping struct {
	Principals []string
	Identity   Identity
}

// Security is how upstream connections are secured. Immutable once built;
// TLS may be swapped atomically by a certificate watcher.
type Security struct {
	// TLS returns the current client TLS config, or nil for plaintext.
	TLS func() *tls.Config
	// Default is used when no mapping matches (nil: no SASL).
	Default *Identity
	// Mappings are tried in order.
	Mappings []Mapping
	// Tokens, when set (upstream.principal_mode: client), logs each client
	// principal no mapping matches in with its own broker delegation token.
	Tokens *Tokens
	// LoginTokens, when set (with Tokens, and delegation_tokens.store:
	// broker), forwards a client that logged in with a broker token with
	// that same token.
	LoginTokens *BrokerTokens
}

// login is who an upstream connection is for: a client principal ("" is
// the proxy itself) and the broker token it logged in with, if any.
type login struct {
	principal string
	tokenID   string
}

// mapped returns the identity of the first mapping matching principal.
func (s *Security) mapped(principal string) *Identity {
	for i := range s.Mappings {
		for _, p := range s.Mappings[i].Principals {
			if ok, _ := path.Match(p, principal); ok {
				return &s.Mappings[i].Identity
			}
		}
	}
	return nil
}

// identityFor picks the upstream identity for a client login: a mapping's,
// the broker token the client logged in with, the principal's own token, or
// Default (also for the proxy itself, principal "").
func (s *Security) identityFor(ctx context.Context, who login) (*Identity, error) {
	principal := who.principal
	if id := s.mapped(principal); id != nil {
		return id, nil
	}
	if s.forwardsLoginToken(who) {
		id := s.LoginTokens.LoginIdentity(who.tokenID)
		return &id, nil
	}
	if s.Tokens != nil && principal != "" {
		id, err := s.Tokens.Identity(ctx, principal)
		if err != nil {
			return nil, err
		}
		return &id, nil
	}
	return s.Default, nil
}

// usesToken tells whether principal logs in upstream with its own token.
func (s *Security) usesToken(principal string) bool {
	return s != nil && s.Tokens != nil && principal != "" && s.mapped(principal) == nil
}

// forwardsLoginToken tells whether who logs in upstream with the broker
// token it logged in with at the proxy.
func (s *Security) forwardsLoginToken(who login) bool {
	return s != nil && s.Tokens != nil && s.LoginTokens != nil && who.tokenID != "" && who.principal != ""
}

// secure wraps conn in TLS and authenticates it as principal's identity,
// returning the upstream session lifetime (0: none).
func (s *Security) secure(ctx context.Context, conn net.Conn, addr string, who login) (net.Conn, time.Duration, error) {
	if s == nil {
		return conn, 0, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer func() { _ = conn.SetDeadline(time.Time{}) }()
	}
	if s.TLS != nil {
		if cfg := s.TLS(); cfg != nil {
			cfg = cfg.Clone()
			if cfg.ServerName == "" {
				host, _, _ := net.SplitHostPort(addr)
				cfg.ServerName = host
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, 0, fmt.Errorf("upstream tls handshake with %s: %w", addr, err)
			}
			conn = tc
		}
	}
	id, err := s.identityFor(ctx, who)
	if err != nil {
		return nil, 0, err
	}
	if id == nil {
		return conn, 0, nil
	}
	life, err := authenticate(ctx, conn, addr, *id)
	if err != nil {
		return nil, 0, &authError{id: *id, err: err, loginToken: s.forwardsLoginToken(who)}
	}
	if life > 0 {
		sc := &SessionConn{Conn: conn, addr: addr, id: *id, principal: who.principal, sec: s,
			loginToken: s.forwardsLoginToken(who)}
		sc.schedule(life)
		return sc, life, nil
	}
	return conn, life, nil
}

// SessionConn is an upstream connection whose broker session expires
// (KIP-368: the broker sent a session lifetime). Its owner re-authenticates
// it in-band before ReauthAt, when nothing is in flight on it.
type SessionConn struct {
	net.Conn
	addr      string
	id        Identity
	principal string
	sec       *Security
	// loginToken: id is the broker token the client logged in with, kept
	// for the connection's life (not the principal's own token).
	loginToken bool
	reauth     time.Time
	expires    time.Time
}

// schedule re-authenticates at 85% of the lifetime, as the Java client
// does at the earliest.
func (c *SessionConn) schedule(life time.Duration) {
	now := time.Now()
	c.expires = now.Add(life)
	c.reauth = now.Add(life * 85 / 100)
}

// ReauthAt is when the connection should be re-authenticated.
func (c *SessionConn) ReauthAt() time.Time { return c.reauth }

// Reauthenticate runs SaslHandshake and SaslAuthenticate again with the
// same identity (the client's own broker token included: once it is
// expired the brokers refuse it and the connection ends), or for a
// principal's token login with the principal's current token (renewed or
// replaced meanwhile). No other request may be in flight on the connection.
func (c *SessionConn) Reauthenticate(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.Conn.SetDeadline(dl)
		defer func() { _ = c.Conn.SetDeadline(time.Time{}) }()
	}
	perPrincipal := c.id.Token && !c.loginToken
	if perPrincipal {
		id, err := c.sec.Tokens.Identity(ctx, c.principal)
		if err != nil {
			return fmt.Errorf("upstream re-authentication of %s: %w", c.principal, err)
		}
		c.id = id
	}
	life, err := authenticate(ctx, c.Conn, c.addr, c.id)
	if err != nil {
		if perPrincipal {
			c.sec.Tokens.Forget(c.principal, c.id.Username)
		}
		return fmt.Errorf("upstream re-authentication as %s: %w", c.id.Username, err)
	}
	if life <= 0 {
		life = 365 * 24 * time.Hour // the broker no longer limits the session
	}
	c.schedule(life)
	return nil
}

// authError is a failed upstream SASL login as id.
type authError struct {
	id         Identity
	err        error
	loginToken bool // id is the client's own broker token
}

func (e *authError) Error() string {
	who := e.id.Username
	if e.id.Token {
		who = "token " + who
	}
	return fmt.Sprintf("upstream sasl %s as %s: %v", e.id.Mechanism, who, e.err)
}

func (e *authError) Unwrap() error { return e.err }

// authenticate runs SaslHandshake v1 and SaslAuthenticate v1 rounds as a
// client, before any client traffic flows on conn.
func authenticate(ctx context.Context, conn net.Conn, addr string, id Identity) (time.Duration, error) {
	mech, err := id.mechanism()
	if err != nil {
		return 0, err
	}
	var corr int32 // the proxy's own requests on a fresh connection
	next := func() int32 { corr++; return corr }
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech.Name()
	resp, err := roundTrip(conn, next(), hs)
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return 0, err
	}
	session, msg, err := mech.Authenticate(ctx, addr)
	if err != nil {
		return 0, err
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(1)
		req.SASLAuthBytes = msg
		r, err := roundTrip(conn, next(), req)
		if err != nil {
			return 0, err
		}
		ar := r.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(ar.ErrorCode); err != nil {
			if ar.ErrorMessage != nil {
				return 0, fmt.Errorf("%w: %s", err, *ar.ErrorMessage)
			}
			return 0, err
		}
		done, reply, err := session.Challenge(ar.SASLAuthBytes)
		if err != nil {
			return 0, err
		}
		if done {
			return time.Duration(ar.SessionLifetimeMillis) * time.Millisecond, nil
		}
		msg = reply
	}
}
