package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path"
	"strconv"
	"strings"
	"time"
)

// intBound and durBound keep numeric limits as data (franz-go cfg.validate).
type intBound struct {
	key      string
	val      int
	min, max int
}

type durBound struct {
	key      string
	val      time.Duration
	min, max time.Duration
}

// Validate checks every key and returns all problems joined, each naming its
// key by its dotted path.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}

	if err := checkHostPort(c.Listener.Address, true); err != nil {
		bad("listener.address", "%v", err)
	}
	switch {
	case c.Listener.AdvertisedAddress != "":
		if err := checkHostPort(c.Listener.AdvertisedAddress, false); err != nil {
			bad("listener.advertised_address", "%v", err)
		}
	case unspecifiedHost(c.Listener.Address) && c.Routing.Mode == "sidecar" &&
		c.Routing.AdvertisedAddressTemplate == "" && len(c.Routing.Brokers) == 0:
		// Only then is the listener address what clients are told.
		bad("listener.advertised_address", "required when listener.address has no host clients can dial (%q) and routing names no broker addresses", c.Listener.Address)
	}
	if t := c.Listener.TLS; t.Enabled {
		if t.CertFile == "" {
			bad("listener.tls.cert_file", "required when listener.tls.enabled is true")
		}
		if t.KeyFile == "" {
			bad("listener.tls.key_file", "required when listener.tls.enabled is true")
		}
	}
	if v := c.Listener.TLS.MinVersion; v != "1.2" && v != "1.3" {
		bad("listener.tls.min_version", "must be \"1.2\" or \"1.3\", not %q", v)
	}

	seen := map[string]bool{}
	if len(c.SASL.Mechanisms) == 0 {
		bad("sasl.mechanisms", "at least one mechanism is required")
	}
	for _, m := range c.SASL.Mechanisms {
		switch {
		case m != "SCRAM-SHA-512" && m != "SCRAM-SHA-256":
			bad("sasl.mechanisms", "unsupported mechanism %q (SCRAM-SHA-512, SCRAM-SHA-256)", m)
		case seen[m]:
			bad("sasl.mechanisms", "%s listed twice", m)
		}
		seen[m] = true
	}

	if c.Credentials.File == "" && c.Credentials.SecretsDir == "" && !c.State.Persistent() {
		bad("credentials.file", "required (or credentials.secrets_dir, or state.dir or state.backend kafka for users managed through the admin API)")
	}
	if len(c.Upstream.BootstrapServers) == 0 {
		bad("upstream.bootstrap_servers", "at least one host:port is required")
	}
	for _, s := range c.Upstream.BootstrapServers {
		if err := checkHostPort(s, false); err != nil {
			bad("upstream.bootstrap_servers", "%v", err)
		}
	}

	for _, b := range []intBound{
		{"listener.max_connections", c.Listener.MaxConnections, 1, 1 << 20},
		{"listener.max_connections_per_ip", c.Listener.MaxConnectionsPerIP, 0, 1 << 20},
		{"listener.max_request_size", c.Listener.MaxRequestSize, 1 << 10, 1 << 30},
		{"sasl.max_receive_size", c.SASL.MaxReceiveSize, 1 << 10, 16 << 20},
		{"delegation_tokens.max_per_owner", c.Tokens.MaxPerOwner, 1, 1 << 20},
	} {
		if b.val < b.min || b.val > b.max {
			bad(b.key, "%d is outside %d..%d", b.val, b.min, b.max)
		}
	}
	maxMillis := time.Duration(math.MaxInt32) * time.Millisecond // sent as int32 ms
	for _, b := range []durBound{
		{"listener.idle_timeout", c.Listener.IdleTimeout, time.Second, 24 * time.Hour},
		{"sasl.failed_auth_delay", c.SASL.FailedAuthDelay, 0, min(c.Listener.IdleTimeout, maxMillis)},
		{"sasl.max_failed_auth_delay", c.SASL.MaxFailedAuthDelay, 0, time.Minute},
		{"sasl.auth_timeout", c.SASL.AuthTimeout, time.Millisecond, 5 * time.Minute},
		{"upstream.dial_timeout", c.Upstream.DialTimeout, time.Millisecond, 5 * time.Minute},
		{"sasl.max_reauth", c.SASL.MaxReauth, 0, 365 * 24 * time.Hour},
		{"credentials.reload_interval", c.Credentials.ReloadInterval, 100 * time.Millisecond, time.Hour},
		{"shutdown.timeout", c.Shutdown.Timeout, 0, time.Hour},
		{"delegation_tokens.max_lifetime", c.Tokens.MaxLifetime, time.Millisecond, 10 * 365 * 24 * time.Hour},
		{"delegation_tokens.expiry_time", c.Tokens.ExpiryTime, time.Millisecond, 10 * 365 * 24 * time.Hour},
		{"delegation_tokens.expiry_check_interval", c.Tokens.ExpiryCheckInterval, time.Millisecond, 365 * 24 * time.Hour},
	} {
		if b.val < b.min || b.val > b.max {
			bad(b.key, "%v is outside %v..%v", b.val, b.min, b.max)
		}
	}

	checkSASL := func(key string, u UpstreamSASL, required bool) {
		switch u.Mechanism {
		case "":
			if required {
				bad(key+".mechanism", "required")
			}
			return
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			bad(key+".mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q", u.Mechanism)
		}
		if u.Username == "" {
			bad(key+".username", "required with a mechanism")
		}
		if (u.Password == "") == (u.PasswordFile == "") {
			bad(key, "set exactly one of password and password_file")
		}
	}
	checkSASL("upstream.sasl", c.Upstream.SASL, false)
	for i, id := range c.Upstream.Identities {
		key := "upstream.identities[" + strconv.Itoa(i) + "]"
		if len(id.Principals) == 0 {
			bad(key+".principals", "at least one principal is required")
		}
		for _, p := range id.Principals {
			if _, err := path.Match(p, ""); err != nil || !strings.Contains(p, ":") {
				bad(key+".principals", "%q is not a Type:Name pattern", p)
			}
		}
		checkSASL(key+".sasl", id.SASL, true)
	}
	switch c.Upstream.PrincipalMode {
	case "proxy":
	case "client":
		if c.Upstream.SASL.Mechanism == "" {
			bad("upstream.sasl.mechanism", "required when upstream.principal_mode is client: the proxy creates each principal's broker token with it")
		}
	default:
		bad("upstream.principal_mode", "must be proxy or client, not %q", c.Upstream.PrincipalMode)
	}
	if t := c.Upstream.TLS; !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify) {
		bad("upstream.tls.enabled", "set to true to use the other upstream.tls keys")
	}
	if t := c.Upstream.TLS; (t.CertFile == "") != (t.KeyFile == "") {
		bad("upstream.tls", "cert_file and key_file go together")
	}
	if a := c.Metrics.Address; a != "" {
		if err := checkHostPort(a, true); err != nil {
			bad("metrics.address", "%v", err)
		}
	}
	if c.Metrics.Pprof {
		if err := checkHostPort(c.Metrics.PprofAddress, true); err != nil {
			bad("metrics.pprof_address", "%v (required with metrics.pprof)", err)
		}
	}
	r := c.Routing
	nodeKey := func(key, k string) {
		if _, err := parseNodeID(k); err != nil {
			bad(key, "%v", err)
		}
	}
	for k, v := range r.Brokers {
		nodeKey("routing.brokers", k)
		if err := checkHostPort(v, false); err != nil {
			bad("routing.brokers", "node %s: %v", k, err)
		}
	}
	for k, v := range r.BrokerPorts {
		nodeKey("routing.broker_ports", k)
		if v < 1 || v > 65535 {
			bad("routing.broker_ports", "node %s: port %d outside 1..65535", k, v)
		}
	}
	switch r.Mode {
	case "sidecar":
		if t := r.AdvertisedAddressTemplate; t != "" && !strings.Contains(t, "{id}") {
			bad("routing.advertised_address_template", "%q has no {id}", t)
		}
	case "port-per-broker":
		if r.AdvertisedHost == "" {
			bad("routing.advertised_host", "required when routing.mode is port-per-broker")
		}
		if r.BrokerPortBase <= 0 && len(r.BrokerPorts) == 0 {
			bad("routing.broker_port_base", "required (or routing.broker_ports) when routing.mode is port-per-broker")
		}
		if r.BrokerPortBase < 0 || r.BrokerPortBase > 65535 {
			bad("routing.broker_port_base", "%d outside 1..65535", r.BrokerPortBase)
		}
	case "sni":
		if !strings.Contains(r.SNIHostPattern, "{id}") {
			bad("routing.sni_host_pattern", "required with {id} when routing.mode is sni")
		}
		if !c.Listener.TLS.Enabled {
			bad("routing.mode", "sni needs listener.tls.enabled")
		}
	default:
		bad("routing.mode", "must be sidecar, port-per-broker or sni, not %q", r.Mode)
	}

	keys := 0
	for _, k := range []string{c.Tokens.MasterKey, c.Tokens.SecretKey, c.Tokens.MasterKeyFile} {
		if k != "" {
			keys++
		}
	}
	if keys > 1 {
		bad("delegation_tokens", "set only one of master_key, secret_key and master_key_file")
	}
	if keys > 0 && len(c.Tokens.Keys) > 0 {
		bad("delegation_tokens.keys", "set keys or one of master_key, secret_key and master_key_file, not both")
	}
	ids := map[string]bool{}
	for i, k := range c.Tokens.Keys {
		key := "delegation_tokens.keys[" + strconv.Itoa(i) + "]"
		switch {
		case k.ID == "":
			bad(key+".id", "required: it names the key in the tokens it mints and in metrics")
		case !validKeyID(k.ID):
			bad(key+".id", "%q must be 1 to 64 letters, digits, '.', '_' or '-'", k.ID)
		case ids[k.ID]:
			bad(key+".id", "%q is listed twice", k.ID)
		}
		ids[k.ID] = true
		if (k.Secret == "") == (k.File == "") {
			bad(key, "set exactly one of secret and file")
		}
	}
	switch c.Tokens.Store {
	case "proxy":
		if c.Tokens.Enabled() && !c.State.Persistent() {
			bad("state.dir", "required when delegation tokens are enabled (tokens persist there), unless state.backend is kafka")
		}
	case "broker":
		if !c.Tokens.Enabled() {
			bad("delegation_tokens", "a key is required when delegation_tokens.store is broker: the brokers' delegation.token.secret.key (master_key, secret_key, master_key_file or keys)")
		}
		if len(c.Tokens.Keys) > 1 {
			bad("delegation_tokens.keys", "at most one key when delegation_tokens.store is broker: the brokers have one delegation.token.secret.key")
		}
		if c.Upstream.SASL.Mechanism == "" {
			bad("upstream.sasl.mechanism", "required when delegation_tokens.store is broker: the proxy manages and describes the brokers' tokens with it")
		}
	default:
		bad("delegation_tokens.store", "must be proxy or broker, not %q", c.Tokens.Store)
	}
	c.State.validate(bad)
	for _, p := range c.Authz.SuperUsers {
		if t, n, ok := strings.Cut(p, ":"); !ok || t == "" || n == "" {
			bad("authorization.super_users", "%q is not Type:Name (e.g. User:admin)", p)
		}
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if _, err := parseConnOverrides(c.Listener.MaxConnectionsPerIPOverrides); err != nil {
		bad("listener.max_connections_per_ip_overrides", "%v", err)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "must be json or console, not %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// validate checks state.backend and, for kafka, the state topic's keys.
func (s State) validate(bad func(key, format string, args ...any)) {
	switch s.Backend {
	case "local":
		return
	case "kafka":
	default:
		bad("state.backend", "must be local or kafka, not %q", s.Backend)
		return
	}
	k := s.Kafka
	if k.KeyFile == "" {
		bad("state.kafka.key_file", "required when state.backend is kafka (the keys that seal every record)")
	}
	if err := checkTopicName(k.Topic); err != nil {
		bad("state.kafka.topic", "%v", err)
	}
	if k.ReplicationFactor < 1 || k.ReplicationFactor > math.MaxInt16 {
		bad("state.kafka.replication_factor", "%d is outside 1..%d", k.ReplicationFactor, math.MaxInt16)
	}
	if k.MinInsyncReplicas < 1 || k.MinInsyncReplicas > max(k.ReplicationFactor, 1) {
		bad("state.kafka.min_insync_replicas", "%d is outside 1..state.kafka.replication_factor (%d)", k.MinInsyncReplicas, k.ReplicationFactor)
	}
}

// checkTopicName applies Kafka's rules for a topic name (Topic.validate):
// 1 to 249 letters, digits, '.', '_' or '-', and not "." or "..".
func checkTopicName(t string) error {
	switch {
	case t == "":
		return errors.New("required")
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a valid topic name", t)
	case len(t) > 249:
		return fmt.Errorf("%d characters, Kafka allows 249", len(t))
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: a topic name holds only letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// parseConnOverrides parses listener.max_connections_per_ip_overrides:
// "host=limit" entries, host an IP address or a host name, limit 0 (refuse
// the host) to 1<<20, each host once. It returns limit by host as written.
func parseConnOverrides(entries []string) (map[string]int, error) {
	m := map[string]int{}
	for _, e := range entries {
		host, v, ok := strings.Cut(e, "=")
		host = strings.TrimSpace(host)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case !ok || host == "":
			return nil, fmt.Errorf("%q is not host=limit", e)
		case err != nil || n < 0 || n > 1<<20:
			return nil, fmt.Errorf("%q: the limit must be a number from 0 to %d", e, 1<<20)
		case net.ParseIP(host) == nil && !validHostName(host):
			return nil, fmt.Errorf("%q: %q is neither an IP address nor a host name", e, host)
		}
		if _, dup := m[host]; dup {
			return nil, fmt.Errorf("%q is listed twice", host)
		}
		m[host] = n
	}
	return m, nil
}

// validHostName accepts DNS names: dot-separated labels of letters, digits
// and hyphens, 1 to 63 bytes each, at most 253 bytes in all.
func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkHostPort accepts host:port with a port 1-65535 (0 too for a listener,
// meaning any free port); the host may be empty only for a listener.
func checkHostPort(s string, listener bool) error {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(p)
	lo := 1
	if listener {
		lo = 0
	}
	if err != nil || port < lo || port > 65535 {
		return fmt.Errorf("%q has an invalid port", s)
	}
	if host == "" && !listener {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// validKeyID: a token key id is short and plain, as it is written into every
// token record and used as a metric label.
func validKeyID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return id != ""
}
