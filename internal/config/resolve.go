package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Resolved is what the configuration names indirectly: the secrets held in
// the files it points to, and its node-id maps parsed to numbers. Its String
// and GoString redact, so it never prints a secret.
type Resolved struct {
	// TokenKeys are the delegation-token HMAC keys, the minting key
	// first; none leaves tokens off. TokenKey is the minting key's secret
	// ("" with none).
	TokenKeys []ResolvedTokenKey
	TokenKey  string
	// UpstreamPassword is upstream.sasl's password ("" without a mechanism).
	UpstreamPassword string
	// IdentityPasswords[i] is upstream.identities[i].sasl's password.
	IdentityPasswords []string
	// Brokers is routing.brokers and BrokerPorts routing.broker_ports, by
	// node id.
	Brokers     map[int32]string
	BrokerPorts map[int32]int
	// ConnectionsPerIP is listener.max_connections_per_ip_overrides by
	// address, host names resolved (every address of a name gets its
	// limit; an address written out wins over a name's, and of two names
	// with one address the lower limit applies).
	ConnectionsPerIP map[netip.Addr]int

	_ struct{}
}

func (Resolved) String() string   { return "config.Resolved{REDACTED}" }
func (Resolved) GoString() string { return "config.Resolved{REDACTED}" }

// ResolvedTokenKey is one token key with its secret read. Its String and
// GoString leave the secret out.
type ResolvedTokenKey struct {
	ID     string
	Secret string
}

func (k ResolvedTokenKey) String() string   { return "config.ResolvedTokenKey{ID: " + k.ID + "}" }
func (k ResolvedTokenKey) GoString() string { return k.String() }

// Resolve reads the secret files the configuration names and parses its
// node-id maps. It returns every problem, joined, each naming its key. The
// configuration should have passed Validate.
func (c Config) Resolve() (Resolved, error) {
	var r Resolved
	var errs []error
	var err error
	if r.TokenKeys, err = c.Tokens.ResolveKeys(); err != nil {
		errs = append(errs, err)
	}
	if len(r.TokenKeys) > 0 {
		r.TokenKey = r.TokenKeys[0].Secret
	}
	if r.UpstreamPassword, err = c.Upstream.SASL.Secret("upstream.sasl"); err != nil {
		errs = append(errs, err)
	}
	for i, id := range c.Upstream.Identities {
		pw, err := id.SASL.Secret("upstream.identities[" + strconv.Itoa(i) + "].sasl")
		if err != nil {
			errs = append(errs, err)
		}
		r.IdentityPasswords = append(r.IdentityPasswords, pw)
	}
	r.Brokers = map[int32]string{}
	for k, v := range c.Routing.Brokers {
		n, err := parseNodeID(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("routing.brokers: %w", err))
			continue
		}
		r.Brokers[n] = v
	}
	r.BrokerPorts = map[int32]int{}
	for k, v := range c.Routing.BrokerPorts {
		n, err := parseNodeID(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("routing.broker_ports: %w", err))
			continue
		}
		r.BrokerPorts[n] = v
	}
	if r.ConnectionsPerIP, err = resolveConnOverrides(c.Listener.MaxConnectionsPerIPOverrides, c.Upstream.DialTimeout); err != nil {
		errs = append(errs, fmt.Errorf("listener.max_connections_per_ip_overrides: %w", err))
	}
	return r, errors.Join(errs...)
}

// resolveConnOverrides turns the overrides into limits by address,
// looking host names up (within timeout each), as Kafka resolves the
// hosts of max.connections.per.ip.overrides when it reads them.
func resolveConnOverrides(entries []string, timeout time.Duration) (map[netip.Addr]int, error) {
	byHost, err := parseConnOverrides(entries)
	if err != nil {
		return nil, err
	}
	out, named := map[netip.Addr]int{}, map[netip.Addr]int{}
	var errs []error
	for host, n := range byHost {
		if ip, err := netip.ParseAddr(host); err == nil {
			out[ip.Unmap()] = n
		}
	}
	for host, n := range byHost {
		if _, err := netip.ParseAddr(host); err == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		for _, ip := range ips {
			ip = ip.Unmap()
			if _, explicit := byHost[ip.String()]; explicit {
				continue
			}
			if m, set := named[ip]; !set || n < m { // two names, one address: the lower limit
				named[ip] = n
				out[ip] = n
			}
		}
	}
	return out, errors.Join(errs...)
}

// Key returns the delegation-token HMAC key, "" when no source is set. The
// sources in order of precedence: master_key_file (its content without the
// trailing line break), secret_key, then master_key, as Kafka prefers
// delegation.token.secret.key over its deprecated master.key. Validate
// refuses more than one source, so the order matters only to a caller that
// skipped it.
func (t Tokens) Key() (string, error) {
	switch {
	case t.MasterKeyFile != "":
		return readSecretFile("delegation_tokens.master_key_file", t.MasterKeyFile)
	case t.SecretKey != "":
		return t.SecretKey, nil
	default:
		return t.MasterKey, nil
	}
}

// ResolveKeys returns the token keys in order, secrets read: keys, or the
// one key of the single-key settings under DefaultTokenKeyID, or none. Two
// keys with one secret are refused: the proxy tells a token's key by the
// secret's fingerprint, and a copy under a new id would be a rotation that
// rotates nothing.
func (t Tokens) ResolveKeys() ([]ResolvedTokenKey, error) {
	if len(t.Keys) == 0 {
		s, err := t.Key()
		if err != nil || s == "" {
			return nil, err
		}
		return []ResolvedTokenKey{{ID: DefaultTokenKeyID, Secret: s}}, nil
	}
	var out []ResolvedTokenKey
	var errs []error
	seen := map[string]string{} // secret → id
	for i, k := range t.Keys {
		key := "delegation_tokens.keys[" + strconv.Itoa(i) + "]"
		s := k.Secret
		if k.File != "" {
			var err error
			if s, err = readSecretFile(key+".file", k.File); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if id, ok := seen[s]; ok {
			errs = append(errs, fmt.Errorf("%s: the same secret as key %q; every key needs its own", key, id))
			continue
		}
		seen[s] = k.ID
		out = append(out, ResolvedTokenKey{ID: k.ID, Secret: s})
	}
	return out, errors.Join(errs...)
}

// Secret returns the identity's password: password_file's content without
// the trailing line break, or password. key names the identity in errors
// ("upstream.sasl"). Without a mechanism there is no password.
func (u UpstreamSASL) Secret(key string) (string, error) {
	switch {
	case u.Mechanism == "":
		return "", nil
	case u.PasswordFile != "":
		return readSecretFile(key+".password_file", u.PasswordFile)
	default:
		return u.Password, nil
	}
}

// readSecretFile reads a one-line secret. A file with nothing but a line
// break holds no secret: it is refused here, as an empty key or password
// set directly would be.
func readSecretFile(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s holds no secret (it is empty or only a line break)", key, path)
	}
	return s, nil
}

// parseNodeID parses a broker node id as written in routing maps: a decimal
// int32 without sign or leading zeros.
func parseNodeID(k string) (int32, error) {
	n, err := strconv.ParseUint(k, 10, 31)
	if err != nil || strconv.FormatUint(n, 10) != k {
		return 0, fmt.Errorf("%q is not a broker node id", k)
	}
	return int32(n), nil
}
