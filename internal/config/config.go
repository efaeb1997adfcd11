package config

import (
	"net"
	"time"
)

// Config is the whole configuration. Keys are the mapstructure tags joined
// with dots, e.g. listener.tls.cert_file.
type Config struct {
	Listener    Listener    `mapstructure:"listener"`
	SASL        SASL        `mapstructure:"sasl"`
	Credentials Credentials `mapstructure:"credentials"`
	Upstream    Upstream    `mapstructure:"upstream"`
	Routing     Routing     `mapstructure:"routing"`
	Tokens      Tokens      `mapstructure:"delegation_tokens"`
	Authz       Authz       `mapstructure:"authorization"`
	State       State       `mapstructure:"state"`
	Metrics     Metrics     `mapstructure:"metrics"`
	Shutdown    Shutdown    `mapstructure:"shutdown"`
	Log         Log         `mapstructure:"log"`
}

// Metrics serves /metrics, /healthz and /readyz; an empty address is off.
// Pprof serves Go's /debug/pprof/ profiles on PprofAddress, loopback unless
// configured otherwise: they are unauthenticated, and /debug/pprof/cmdline
// shows the command line. PprofAddress may equal Address (one listener).
type Metrics struct {
	Address      string `mapstructure:"address"`
	Pprof        bool   `mapstructure:"pprof"`
	PprofAddress string `mapstructure:"pprof_address"`
}

// Shutdown bounds the drain after SIGTERM.
type Shutdown struct {
	Timeout time.Duration `mapstructure:"timeout"`
}

// Routing says how clients reach each upstream broker through the proxy.
type Routing struct {
	// Mode: sidecar (one proxy per broker, forwarding to its local broker),
	// port-per-broker (one listener per broker), or sni (one TLS port, the
	// server name picks the broker).
	Mode string `mapstructure:"mode"`
	// Sidecar: node N is advertised as AdvertisedAddressTemplate with
	// "{id}" replaced, unless Brokers maps N ("N": "host:port"); with
	// neither, every node gets listener.advertised_address.
	AdvertisedAddressTemplate string            `mapstructure:"advertised_address_template"`
	Brokers                   map[string]string `mapstructure:"brokers"`
	// Port-per-broker: node N listens on BrokerPortBase+N, or
	// BrokerPorts["N"], and is advertised at AdvertisedHost.
	BrokerPortBase int            `mapstructure:"broker_port_base"`
	BrokerPorts    map[string]int `mapstructure:"broker_ports"`
	AdvertisedHost string         `mapstructure:"advertised_host"`
	// SNI: server names matching this pattern ("b{id}.kafka.example.com")
	// reach node {id} and are what gets advertised; others bootstrap.
	SNIHostPattern string `mapstructure:"sni_host_pattern"`
	// FetchNodeEndpoints advertises Fetch v16+ and holds each Fetch
	// response whole to rewrite its KIP-951 node endpoints; off, Fetch is
	// capped at v15 and streams.
	FetchNodeEndpoints bool `mapstructure:"fetch_node_endpoints"`
}

// Tokens configures delegation tokens (Kafka's delegation.token.*). Set
// keys, or one of the three single-key sources; none disables tokens.
//
// Keys tagged secret (here and in UpstreamSASL) are refused as command-line
// flags, where ps and /debug/pprof/cmdline show them; the tag names the
// sibling key that reads the secret from a file instead.
type Tokens struct {
	MasterKey           string        `mapstructure:"master_key" secret:"master_key_file"` // delegation.token.master.key
	SecretKey           string        `mapstructure:"secret_key" secret:"master_key_file"` // delegation.token.secret.key
	MasterKeyFile       string        `mapstructure:"master_key_file"`                     // the key, read from a file
	MaxLifetime         time.Duration `mapstructure:"max_lifetime"`
	ExpiryTime          time.Duration `mapstructure:"expiry_time"`
	ExpiryCheckInterval time.Duration `mapstructure:"expiry_check_interval"`
	// MaxPerOwner bounds the live tokens one owner may hold; one more is
	// refused with POLICY_VIOLATION. The proxy's own: Kafka has no limit.
	MaxPerOwner int `mapstructure:"max_per_owner"`
	// Keys lists the token keys for rotation (file only), in order: the
	// first mints new tokens, each listed key keeps validating the tokens
	// it minted. The single-key settings above are the one-key list
	// {id: default}.
	Keys []TokenKey `mapstructure:"keys"`
	// Store is where tokens live: "proxy" (this proxy's state.dir) or
	// "broker" (the brokers' metadata log: the token APIs are performed
	// there with upstream.sasl on the caller's behalf, and token logins
	// are checked against what the brokers describe, so every proxy in
	// front of the cluster accepts every token). With broker the key is
	// the brokers' delegation.token.secret.key.
	Store string `mapstructure:"store"`
}

// TokenKey is one delegation_tokens.keys entry: an id, recorded in every
// token the key mints and shown in metrics, and the secret, inline or read
// from a file.
type TokenKey struct {
	ID     string `mapstructure:"id"`
	Secret string `mapstructure:"secret"`
	File   string `mapstructure:"file"`
}

// DefaultTokenKeyID is the id of the key the single-key settings
// (master_key, secret_key, master_key_file) name.
const DefaultTokenKeyID = "default"

// BrokerStore reports whether tokens live at the brokers.
func (t Tokens) BrokerStore() bool { return t.Store == "broker" }

// Enabled reports whether any key source is set.
func (t Tokens) Enabled() bool {
	return t.MasterKey != "" || t.SecretKey != "" || t.MasterKeyFile != "" || len(t.Keys) > 0
}

// Authz names privileged principals.
type Authz struct {
	// SuperUsers ("User:admin") may create tokens for others and describe
	// every token.
	SuperUsers []string `mapstructure:"super_users"`
}

// State is where the proxy keeps what must survive a restart: delegation
// tokens, users written through the SCRAM admin API and the secret behind
// phantom logins.
type State struct {
	// Backend is local (an embedded database in Dir, one proxy's own) or
	// kafka (a compacted topic on the upstream cluster, shared by every
	// proxy that names it).
	Backend string     `mapstructure:"backend"`
	Dir     string     `mapstructure:"dir"`
	Kafka   StateKafka `mapstructure:"kafka"`
}

// StateKafka is the state topic of state.backend kafka, reached with the
// upstream.* connection settings (bootstrap servers, TLS, SASL).
type StateKafka struct {
	// Topic is created if missing with one partition,
	// cleanup.policy=compact and these two settings; an existing topic
	// must have them all.
	Topic             string `mapstructure:"topic"`
	ReplicationFactor int    `mapstructure:"replication_factor"`
	MinInsyncReplicas int    `mapstructure:"min_insync_replicas"`
	// KeyFile holds the AES-256 keys that seal every record, one
	// "<id> <base64 key>" per line; the first seals, all open.
	KeyFile string `mapstructure:"key_file"`
}

// Shared reports whether the state lives in the Kafka topic.
func (s State) Shared() bool { return s.Backend == "kafka" }

// Persistent reports whether tokens and admin-API users survive a restart:
// a state.dir, or the Kafka topic.
func (s State) Persistent() bool { return s.Dir != "" || s.Shared() }

// Listener is the client-facing side.
type Listener struct {
	Address           string        `mapstructure:"address"`
	AdvertisedAddress string        `mapstructure:"advertised_address"`
	TLS               ListenerTLS   `mapstructure:"tls"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	MaxConnections    int           `mapstructure:"max_connections"`
	MaxRequestSize    int           `mapstructure:"max_request_size"`
	// MaxConnectionsPerIP is max.connections.per.ip (0: no limit);
	// MaxConnectionsPerIPOverrides its max.connections.per.ip.overrides,
	// as "host=limit" entries (an IP address or a host name, resolved at
	// start).
	MaxConnectionsPerIP          int      `mapstructure:"max_connections_per_ip"`
	MaxConnectionsPerIPOverrides []string `mapstructure:"max_connections_per_ip_overrides"`
}

// ListenerTLS terminates TLS on the listener. The files are reloaded when
// they change.
type ListenerTLS struct {
	Enabled    bool   `mapstructure:"enabled"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	MinVersion string `mapstructure:"min_version"`
	// ClientCAFile makes client certificates required and verified.
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// SASL is the authentication gate.
type SASL struct {
	Mechanisms      []string      `mapstructure:"mechanisms"`
	FailedAuthDelay time.Duration `mapstructure:"failed_auth_delay"`
	// MaxFailedAuthDelay caps the failed-login throttle's spacing between
	// password checks for one user name or source address; below
	// FailedAuthDelay it counts as FailedAuthDelay; 0 turns it off.
	MaxFailedAuthDelay time.Duration `mapstructure:"max_failed_auth_delay"`
	MaxReceiveSize     int           `mapstructure:"max_receive_size"`
	AuthTimeout        time.Duration `mapstructure:"auth_timeout"`
	// MaxReauth is connections.max.reauth.ms: 0 leaves password sessions
	// without a deadline; token sessions always end with their token.
	MaxReauth time.Duration `mapstructure:"max_reauth"`
}

// Credentials names where users come from. Users written through the
// SCRAM admin API live in state.dir.
type Credentials struct {
	File string `mapstructure:"file"`
	// SecretsDir holds AmazonMSK_* files with {"username","password"}
	// JSON (AWS Secrets Manager secrets mounted by the CSI driver).
	SecretsDir string `mapstructure:"secrets_dir"`
	// ReloadInterval is how often the file and directory are checked.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
}

// Upstream is the broker side.
type Upstream struct {
	BootstrapServers []string      `mapstructure:"bootstrap_servers"`
	DialTimeout      time.Duration `mapstructure:"dial_timeout"`
	TLS              UpstreamTLS   `mapstructure:"tls"`
	SASL             UpstreamSASL  `mapstructure:"sasl"`
	// Identities map client principals to upstream SASL identities, so
	// broker ACLs and quotas apply per mapped identity (file only).
	Identities []Identity `mapstructure:"identities"`
	// PrincipalMode is who a client acts as at the brokers: "proxy" (the
	// proxy's identity, or an Identities entry) or "client" (its own
	// principal, through a broker delegation token the proxy creates for
	// it with its upstream.sasl identity).
	PrincipalMode string `mapstructure:"principal_mode"`
}

// UpstreamTLS secures upstream connections; files reload on change.
type UpstreamTLS struct {
	Enabled            bool   `mapstructure:"enabled"`
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	ServerName         string `mapstructure:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// UpstreamSASL is an identity the proxy presents to the brokers.
type UpstreamSASL struct {
	Mechanism    string `mapstructure:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "" for none
	Username     string `mapstructure:"username"`
	Password     string `mapstructure:"password" secret:"password_file"`
	PasswordFile string `mapstructure:"password_file"`
}

// Identity maps principals ("User:alice", globs "User:team-a-*") to SASL.
type Identity struct {
	Principals []string     `mapstructure:"principals"`
	SASL       UpstreamSASL `mapstructure:"sasl"`
}

// Log configures the process logger.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Defaults returns the configuration used for every key not set elsewhere.
// The values follow Kafka's broker defaults where one exists.
func Defaults() Config {
	return Config{
		Listener: Listener{
			Address:        "0.0.0.0:9096",
			TLS:            ListenerTLS{Enabled: true, MinVersion: "1.2"},
			IdleTimeout:    10 * time.Minute, // connections.max.idle.ms
			MaxConnections: 10000,
			MaxRequestSize: 104857600, // socket.request.max.bytes
		},
		SASL: SASL{
			Mechanisms:         []string{"SCRAM-SHA-512"},
			FailedAuthDelay:    100 * time.Millisecond, // connection.failed.authentication.delay.ms
			MaxFailedAuthDelay: 5 * time.Second,
			MaxReceiveSize:     524288, // sasl.server.max.receive.size
			AuthTimeout:        10 * time.Second,
		},
		Credentials: Credentials{ReloadInterval: time.Second},
		Upstream:    Upstream{DialTimeout: 10 * time.Second, PrincipalMode: "proxy"},
		Routing:     Routing{Mode: "sidecar"},
		Metrics:     Metrics{Address: "0.0.0.0:9404", PprofAddress: "127.0.0.1:6060"},
		Shutdown:    Shutdown{Timeout: 30 * time.Second},
		Tokens: Tokens{
			MaxLifetime:         7 * 24 * time.Hour, // delegation.token.max.lifetime.ms
			ExpiryTime:          24 * time.Hour,     // delegation.token.expiry.time.ms
			ExpiryCheckInterval: time.Hour,          // delegation.token.expiry.check.interval.ms
			MaxPerOwner:         100,
			Store:               "proxy",
		},
		State: State{Backend: "local", Kafka: StateKafka{Topic: "__scram_proxy_state", ReplicationFactor: 3, MinInsyncReplicas: 2}},
		Log:   Log{Level: "info", Format: "json"},
	}
}

// AdvertisedAddress is what clients are told to connect to: the configured
// advertised address, or the listener address.
func (c Config) AdvertisedAddress() string {
	if c.Listener.AdvertisedAddress != "" {
		return c.Listener.AdvertisedAddress
	}
	return c.Listener.Address
}

// unspecifiedHost reports a listener host clients cannot dial.
func unspecifiedHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
