package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// buildUpstream builds the upstream side: the dialer with its TLS and SASL
// identities, the broker directory, the routing strategy and the ApiVersions
// probe.
func (a *App) buildUpstream(res config.Resolved) error {
	u, r := a.cfg.Upstream, a.cfg.Routing
	var err error
	if a.dialer, err = upstream.NewDialer(u.BootstrapServers, u.DialTimeout); err != nil {
		return fmt.Errorf("upstream.bootstrap_servers: %w", err)
	}
	a.dir = upstream.NewDirectory()
	a.routes, err = upstream.NewRoutes(upstream.RoutesOptions{
		Mode: upstream.Mode(r.Mode), Dir: a.dir, Bootstrap: u.BootstrapServers,
		Template: r.AdvertisedAddressTemplate, Brokers: res.Brokers,
		Host: r.AdvertisedHost, PortBase: r.BrokerPortBase, Ports: res.BrokerPorts,
		SNIPattern: r.SNIHostPattern,
		Listen:     a.cfg.Listener.Address, Advertised: a.cfg.AdvertisedAddress(),
	})
	if err != nil {
		return err
	}
	a.dialer.Dir, a.dialer.Local = a.dir, a.routes.DialsLocal()
	if a.dialer.Security, err = a.upstreamSecurity(res); err != nil {
		return err
	}
	if a.cfg.Tokens.BrokerStore() {
		// Validation requires upstream.sasl and a key with the broker store.
		a.brokerTokens = upstream.NewBrokerTokens(upstream.BrokerTokensOptions{Dial: a.dialer,
			Self: u.SASL.Username, SecretKey: res.TokenKey, Mechanism: tokenMechanism(u.SASL.Mechanism), Logger: a.log, Metrics: a.metrics})
		if sec := a.dialer.Security; sec != nil && sec.Tokens != nil {
			sec.LoginTokens = a.brokerTokens
		}
	}
	a.probe = upstream.NewVersionProbe(a.dialer, 0, nil)
	return nil
}

// warnSharedIdentity says at start what the proxy does not authorize: it
// checks who a client is, not what the client may do. In
// upstream.principal_mode proxy, a client acts upstream with the proxy's
// own identity (upstream.sasl, or an unauthenticated connection without it)
// unless an upstream.identities entry maps its principal, and then with
// that entry's identity, shared by every principal the entry matches. The
// brokers' ACLs and quotas see only these identities; the warning names
// upstream.principal_mode client, which makes them see each client. In
// client mode only the principals an identities entry matches share one.
func (a *App) warnSharedIdentity() {
	u := a.cfg.Upstream
	if u.PrincipalMode == "client" {
		if len(u.Identities) > 0 {
			a.log.Warn("clients that an upstream.identities entry matches act upstream with that entry's identity; every other client acts as itself (upstream.principal_mode client)",
				zap.Int("upstream_identities", len(u.Identities)))
		}
		return
	}
	who := "an unauthenticated connection (upstream.sasl is not set)"
	if u.SASL.Mechanism != "" {
		who = u.SASL.Mechanism + " user " + u.SASL.Username + " (upstream.sasl)"
	}
	msg := "every authenticated client acts upstream with the proxy's identity: broker ACLs and quotas apply to it, not to each client; set upstream.principal_mode: client to have each client act as itself"
	if len(u.Identities) > 0 {
		msg = "clients that no upstream.identities entry matches act upstream with the proxy's identity: broker ACLs and quotas apply to it, not to each client; set upstream.principal_mode: client to have each client act as itself"
	}
	a.log.Warn(msg, zap.String("upstream_identity", who), zap.Int("upstream_identities", len(u.Identities)))
}

// admit is the proxy's login admission: in upstream.principal_mode client,
// a principal the brokers refuse a delegation token for cannot log in.
func (a *App) admit() func(ctx context.Context, principal, tokenID string) error {
	if a.dialer.Security == nil || a.dialer.Security.Tokens == nil {
		return nil
	}
	return a.dialer.Admit
}

// checkPrincipalTokens checks once at start, retrying while the brokers
// are unreachable, that the proxy's identity may create delegation tokens
// for other users, and says precisely what is missing if not.
func (a *App) checkPrincipalTokens(ctx context.Context, t *upstream.Tokens) {
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		err := t.Check(ctx)
		var re *upstream.RefusedError
		switch {
		case err == nil:
			a.log.Info("upstream.principal_mode client: the proxy's upstream identity may create delegation tokens for the clients' principals")
			return
		case errors.As(err, &re) || errors.Is(err, kerr.UnsupportedVersion):
			a.log.Error("clients cannot act upstream as themselves", zap.Error(err))
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("upstream.principal_mode client: could not yet check the proxy's right to create delegation tokens; retrying", zap.Error(err))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

// tokenMechanism is the SCRAM mechanism of the proxy's upstream token
// logins: upstream.sasl's, or SCRAM-SHA-512 when that is PLAIN.
func tokenMechanism(upstreamMechanism string) string {
	if upstreamMechanism == "PLAIN" {
		return "SCRAM-SHA-512"
	}
	return upstreamMechanism
}

// checkBrokerTokens describes the brokers' tokens once at start, retrying
// while the brokers are unreachable, so that a broker without
// delegation.token.secret.key, or a proxy identity the brokers refuse, is
// named at start rather than at the first token login.
func (a *App) checkBrokerTokens(ctx context.Context) {
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		toks, err := a.brokerTokens.Tokens(ctx)
		var be *upstream.BrokerTokensError
		switch {
		case err == nil:
			a.log.Info("delegation_tokens.store broker: delegation tokens are the brokers'", zap.Int("tokens", len(toks)))
			return
		case errors.As(err, &be):
			a.log.Error("delegation_tokens.store is broker but the brokers refuse the proxy's DescribeDelegationToken; token logins and the token APIs will fail "+
				"(DELEGATION_TOKEN_AUTH_DISABLED: set delegation.token.secret.key on every broker)", zap.Error(err))
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("delegation_tokens.store broker: could not yet describe the brokers' tokens; retrying", zap.Error(err))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

// upstreamSecurity turns upstream.tls, upstream.sasl and upstream.identities
// into the dialer's security; nil for plaintext without SASL. Passwords were
// read from their files by config.Resolve, once, at start-up.
func (a *App) upstreamSecurity(res config.Resolved) (*upstream.Security, error) {
	u := a.cfg.Upstream
	sec := &upstream.Security{}
	if u.SASL.Mechanism != "" {
		sec.Default = &upstream.Identity{Mechanism: u.SASL.Mechanism, Username: u.SASL.Username, Password: res.UpstreamPassword}
	}
	if u.PrincipalMode == "client" {
		sec.Tokens = upstream.NewTokens(upstream.TokensOptions{Dial: a.dialer, Requester: u.SASL.Username,
			Mechanism: tokenMechanism(u.SASL.Mechanism), Logger: a.log, Metrics: a.metrics})
	}
	for i, m := range u.Identities {
		sec.Mappings = append(sec.Mappings, upstream.Mapping{Principals: m.Principals,
			Identity: upstream.Identity{Mechanism: m.SASL.Mechanism, Username: m.SASL.Username, Password: res.IdentityPasswords[i]}})
	}
	if t := u.TLS; t.Enabled {
		w, err := tlsutil.NewWatcher([]string{t.CAFile, t.CertFile, t.KeyFile}, func() (*tls.Config, error) {
			return tlsutil.ClientFiles(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify)
		})
		if err != nil {
			return nil, inSection("upstream.tls", err)
		}
		w.OnReload = a.reloadLogger("upstream tls files")
		a.watchers = append(a.watchers, w)
		sec.TLS = w.Current
		if t.InsecureSkipVerify {
			a.log.Warn("upstream.tls.insecure_skip_verify is on: the upstream certificate is not verified")
		}
	}
	if sec.TLS == nil && sec.Default == nil && len(sec.Mappings) == 0 {
		return nil, nil
	}
	return sec, nil
}
