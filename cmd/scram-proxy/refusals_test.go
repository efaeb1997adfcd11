package main

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

// fixture holds the files a configuration points to: all valid, plus the
// broken variants the cases swap in.
type fixture struct {
	cert, key, ca string // a server certificate, its key, and its CA
	otherKey      string // a key that does not match cert
	garbage       string // a file with no PEM in it
	users         string // credentials file, one user
	badUsers      string // credentials file with an unknown key
	secrets       string // secrets dir with one valid MSK secret
	badSecrets    string // secrets dir with one malformed secret
	password      string // upstream password file
	tokenKey      string // delegation token key file
	newline       string // "\n" only
	crlf          string // "\r\n" only
	empty         string // zero bytes
	regular       string // a regular file where a directory is expected
	corruptState  string // a state.dir whose state.db is not a database
	sharedState   string // a state.dir group members may read
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsutil.NewDevCA([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile, err := ca.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsutil.NewDevCA([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{cert: certFile, key: keyFile, ca: caFile}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cred, err := sasl.DeriveCredential(sasl.ScramSHA512, "alice-secret", []byte("fixture-salt-0123456789ab"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	f.otherKey = write("other-key.pem", string(other.KeyPEM))
	f.garbage = write("garbage.pem", "not a certificate\n")
	f.users = write("users.yaml", "users:\n  alice:\n    SCRAM-SHA-512: \""+cred.StoredForm()+"\"\n")
	f.badUsers = write("bad-users.yaml", "users:\n  alice:\n    SCRAM-SHA-1: \"x\"\n")
	f.secrets = filepath.Dir(write("secrets/AmazonMSK_bob", `{"username":"bob","password":"bob-secret"}`))
	f.badSecrets = filepath.Dir(write("bad-secrets/AmazonMSK_carol", `{"user":"carol"}`))
	f.password = write("upstream-password", "proxy-secret\n")
	f.tokenKey = write("token-key", "token-master-key\n")
	f.newline = write("newline", "\n")
	f.crlf = write("crlf", "\r\n")
	f.empty = write("empty", "")
	f.regular = write("regular", "a file, not a directory\n")
	f.corruptState = filepath.Dir(write("corrupt-state/state.db", strings.Repeat("not a bolt database ", 300)))
	f.sharedState = filepath.Join(dir, "shared-state")
	if err := os.Mkdir(f.sharedState, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.sharedState, 0o750); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return f
}

// base is a configuration serve starts with: every file the proxy can load
// is named and valid (listener TLS with client CAs, upstream TLS with a
// client certificate and SASL from a password file, a mapped identity,
// credentials file and secrets directory, a token key file, state.dir), and
// every listener takes a free loopback port.
func (f fixture) base(stateDir string) config.Config {
	c := config.Defaults()
	c.Listener.Address = "127.0.0.1:0"
	c.Listener.AdvertisedAddress = "localhost:9096"
	c.Listener.TLS = config.ListenerTLS{Enabled: true, CertFile: f.cert, KeyFile: f.key, MinVersion: "1.2", ClientCAFile: f.ca}
	c.Credentials.File, c.Credentials.SecretsDir = f.users, f.secrets
	c.Upstream.BootstrapServers = []string{"127.0.0.1:9"}
	c.Upstream.TLS = config.UpstreamTLS{Enabled: true, CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, ServerName: "localhost"}
	c.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "proxy", PasswordFile: f.password}
	c.Upstream.Identities = []config.Identity{{Principals: []string{"User:team-a-*"},
		SASL: config.UpstreamSASL{Mechanism: "PLAIN", Username: "team-a", PasswordFile: f.password}}}
	c.Tokens.MasterKeyFile = f.tokenKey
	c.State.Dir = stateDir
	c.Authz.SuperUsers = []string{"User:alice"}
	c.Metrics.Address = "127.0.0.1:0"
	return c
}

// refusal is one configuration serve refuses and check-config must report.
type refusal struct {
	name string
	mod  func(c *config.Config, f fixture) // typed change to the base
	edit func(yaml string) string          // or a change to the file's text
	args []string                          // extra command-line arguments
	env  []string                          // environment
	// want: substrings of the one problem reported, its key first.
	want []string
}

// validationRefusals: one case per rule of config.Load and config.Validate.
func validationRefusals() []refusal {
	c := func(name string, mod func(c *config.Config), want ...string) refusal {
		return refusal{name: name, mod: func(cf *config.Config, _ fixture) { mod(cf) }, want: want}
	}
	return []refusal{
		// Load: the file, its keys and values, the environment.
		{name: "unknown file key", edit: func(y string) string { return y + "bogus: 1\n" }, want: []string{"bogus (line", "unknown configuration key"}},
		{name: "section not a mapping", edit: func(y string) string {
			return strings.Replace(y, "shutdown:\n    timeout: 30s\n", "shutdown: 30s\n", 1)
		}, want: []string{"shutdown (line", "must be a mapping of keys"}},
		{name: "node map not a mapping", edit: func(y string) string {
			return strings.Replace(y, "    brokers: {}\n", "    brokers: [a]\n", 1)
		}, want: []string{"routing.brokers (line", "must be a mapping of node id"}},
		{name: "value of the wrong type", edit: func(y string) string {
			return strings.Replace(y, "    max_connections: 10000\n", "    max_connections: many\n", 1)
		}, want: []string{"listener.max_connections: ", "cannot parse"}},
		{name: "file not YAML", edit: func(string) string { return "listener: [\n" }, want: []string{"config file", "yaml"}},
		{name: "file missing", args: []string{"--config", "/nonexistent/scram-proxy.yaml"}, want: []string{"config file", "no such file"}},
		{name: "unknown environment variable", env: []string{"SCRAM_PROXY_LISTENER_ADRESS=x"}, want: []string{"SCRAM_PROXY_LISTENER_ADRESS", "unknown environment variable"}},
		{name: "node id from a flag", args: []string{"--routing.brokers", "x=h:1"}, want: []string{"routing.brokers", "is not a broker node id"}},
		{name: "upstream password as a flag", args: []string{"--upstream.sasl.password", "pw"},
			want: []string{"--upstream.sasl.password: ", "upstream.sasl.password_file", "SCRAM_PROXY_UPSTREAM_SASL_PASSWORD"}},
		{name: "token master key as a flag", args: []string{"--delegation_tokens.master_key", "k"},
			want: []string{"--delegation_tokens.master_key: ", "delegation_tokens.master_key_file", "SCRAM_PROXY_DELEGATION_TOKENS_MASTER_KEY"}},
		{name: "token secret key as a flag", args: []string{"--delegation_tokens.secret_key", "k"},
			want: []string{"--delegation_tokens.secret_key: ", "delegation_tokens.master_key_file", "SCRAM_PROXY_DELEGATION_TOKENS_SECRET_KEY"}},
		{name: "node id from the environment", env: []string{"SCRAM_PROXY_ROUTING_BROKER_PORTS=01=9100"}, want: []string{"routing.broker_ports", "is not a broker node id"}},

		// Validate, in its order.
		c("listener address", func(c *config.Config) { c.Listener.Address = "nope" }, "listener.address", "is not host:port"),
		c("advertised address", func(c *config.Config) { c.Listener.AdvertisedAddress = "nope" }, "listener.advertised_address", "is not host:port"),
		c("advertised address required", func(c *config.Config) { c.Listener.Address, c.Listener.AdvertisedAddress = "0.0.0.0:0", "" },
			"listener.advertised_address", "required when listener.address has no host"),
		c("listener cert required", func(c *config.Config) { c.Listener.TLS.CertFile = "" }, "listener.tls.cert_file", "required"),
		c("listener key required", func(c *config.Config) { c.Listener.TLS.KeyFile = "" }, "listener.tls.key_file", "required"),
		c("tls min version", func(c *config.Config) { c.Listener.TLS.MinVersion = "1.1" }, "listener.tls.min_version", "must be"),
		c("no mechanism", func(c *config.Config) { c.SASL.Mechanisms = nil }, "sasl.mechanisms", "at least one mechanism"),
		c("unsupported mechanism", func(c *config.Config) { c.SASL.Mechanisms = []string{"PLAIN"} }, "sasl.mechanisms", "unsupported mechanism"),
		c("mechanism twice", func(c *config.Config) { c.SASL.Mechanisms = []string{"SCRAM-SHA-512", "SCRAM-SHA-512"} }, "sasl.mechanisms", "listed twice"),
		c("no user source", func(c *config.Config) {
			c.Credentials.File, c.Credentials.SecretsDir, c.State.Dir, c.Tokens.MasterKeyFile = "", "", "", ""
		}, "credentials.file", "required"),
		c("no bootstrap server", func(c *config.Config) { c.Upstream.BootstrapServers = nil }, "upstream.bootstrap_servers", "at least one"),
		c("bootstrap server", func(c *config.Config) { c.Upstream.BootstrapServers = []string{"nohost"} }, "upstream.bootstrap_servers", "is not host:port"),
		c("max connections", func(c *config.Config) { c.Listener.MaxConnections = 0 }, "listener.max_connections", "is outside"),
		c("max request size", func(c *config.Config) { c.Listener.MaxRequestSize = 100 }, "listener.max_request_size", "is outside"),
		c("max receive size", func(c *config.Config) { c.SASL.MaxReceiveSize = 100 }, "sasl.max_receive_size", "is outside"),
		c("idle timeout", func(c *config.Config) { c.Listener.IdleTimeout = 48 * time.Hour }, "listener.idle_timeout", "is outside"),
		c("failed auth delay", func(c *config.Config) { c.SASL.FailedAuthDelay = 11 * time.Minute }, "sasl.failed_auth_delay", "is outside"),
		c("max connections per ip", func(c *config.Config) { c.Listener.MaxConnectionsPerIP = -1 }, "listener.max_connections_per_ip", "is outside"),
		c("max connections per ip overrides", func(c *config.Config) { c.Listener.MaxConnectionsPerIPOverrides = []string{"10.0.0.1"} },
			"listener.max_connections_per_ip_overrides", "is not host=limit"),
		c("max failed auth delay", func(c *config.Config) { c.SASL.MaxFailedAuthDelay = 2 * time.Minute }, "sasl.max_failed_auth_delay", "is outside"),
		c("auth timeout", func(c *config.Config) { c.SASL.AuthTimeout = 0 }, "sasl.auth_timeout", "is outside"),
		c("dial timeout", func(c *config.Config) { c.Upstream.DialTimeout = 0 }, "upstream.dial_timeout", "is outside"),
		c("max reauth", func(c *config.Config) { c.SASL.MaxReauth = -time.Second }, "sasl.max_reauth", "is outside"),
		c("reload interval", func(c *config.Config) { c.Credentials.ReloadInterval = 10 * time.Millisecond }, "credentials.reload_interval", "is outside"),
		c("shutdown timeout", func(c *config.Config) { c.Shutdown.Timeout = 2 * time.Hour }, "shutdown.timeout", "is outside"),
		c("token max lifetime", func(c *config.Config) { c.Tokens.MaxLifetime = 0 }, "delegation_tokens.max_lifetime", "is outside"),
		c("token expiry time", func(c *config.Config) { c.Tokens.ExpiryTime = 0 }, "delegation_tokens.expiry_time", "is outside"),
		c("token expiry check", func(c *config.Config) { c.Tokens.ExpiryCheckInterval = 0 }, "delegation_tokens.expiry_check_interval", "is outside"),
		c("tokens per owner", func(c *config.Config) { c.Tokens.MaxPerOwner = 0 }, "delegation_tokens.max_per_owner", "is outside"),
		c("identity without mechanism", func(c *config.Config) { c.Upstream.Identities[0].SASL.Mechanism = "" }, "upstream.identities[0].sasl.mechanism", "required"),
		c("upstream mechanism", func(c *config.Config) { c.Upstream.SASL.Mechanism = "GSSAPI" }, "upstream.sasl.mechanism", "must be PLAIN"),
		c("upstream username", func(c *config.Config) { c.Upstream.SASL.Username = "" }, "upstream.sasl.username", "required with a mechanism"),
		c("password and file", func(c *config.Config) { c.Upstream.SASL.Password = "x" }, "upstream.sasl", "set exactly one of password and password_file"),
		c("identity without principals", func(c *config.Config) { c.Upstream.Identities[0].Principals = nil }, "upstream.identities[0].principals", "at least one principal"),
		c("identity principal", func(c *config.Config) { c.Upstream.Identities[0].Principals = []string{"alice"} }, "upstream.identities[0].principals", "is not a Type:Name pattern"),
		c("principal mode", func(c *config.Config) { c.Upstream.PrincipalMode = "user" }, "upstream.principal_mode", "must be proxy or client"),
		c("client mode without upstream sasl", func(c *config.Config) { c.Upstream.PrincipalMode, c.Upstream.SASL = "client", config.UpstreamSASL{} },
			"upstream.sasl.mechanism", "required when upstream.principal_mode is client"),
		c("upstream tls off", func(c *config.Config) { c.Upstream.TLS.Enabled = false }, "upstream.tls.enabled", "set to true"),
		c("upstream cert without key", func(c *config.Config) { c.Upstream.TLS.KeyFile = "" }, "upstream.tls", "cert_file and key_file go together"),
		c("metrics address", func(c *config.Config) { c.Metrics.Address = "nope" }, "metrics.address", "is not host:port"),
		c("profiling address", func(c *config.Config) { c.Metrics.Pprof, c.Metrics.PprofAddress = true, "nope" }, "metrics.pprof_address", "required with metrics.pprof"),
		c("broker node id", func(c *config.Config) { c.Routing.Brokers = map[string]string{"x": "h:1"} }, "routing.brokers", "is not a broker node id"),
		c("broker address", func(c *config.Config) { c.Routing.Brokers = map[string]string{"1": "nohost"} }, "routing.brokers", "node 1:"),
		c("broker port node id", func(c *config.Config) { c.Routing.BrokerPorts = map[string]int{"01": 9100} }, "routing.broker_ports", "is not a broker node id"),
		c("broker port", func(c *config.Config) { c.Routing.BrokerPorts = map[string]int{"1": 70000} }, "routing.broker_ports", "outside 1..65535"),
		c("template without id", func(c *config.Config) { c.Routing.AdvertisedAddressTemplate = "kafka.svc:9096" }, "routing.advertised_address_template", "has no {id}"),
		c("port-per-broker host", func(c *config.Config) { c.Routing.Mode, c.Routing.BrokerPortBase = "port-per-broker", 9100 },
			"routing.advertised_host", "required when routing.mode is port-per-broker"),
		c("port-per-broker ports", func(c *config.Config) { c.Routing.Mode, c.Routing.AdvertisedHost = "port-per-broker", "proxy" },
			"routing.broker_port_base", "required (or routing.broker_ports)"),
		c("port-per-broker base", func(c *config.Config) {
			c.Routing.Mode, c.Routing.AdvertisedHost, c.Routing.BrokerPortBase = "port-per-broker", "proxy", 70000
		}, "routing.broker_port_base", "outside 1..65535"),
		c("sni pattern", func(c *config.Config) { c.Routing.Mode = "sni" }, "routing.sni_host_pattern", "required with {id}"),
		c("sni without tls", func(c *config.Config) {
			c.Routing.Mode, c.Routing.SNIHostPattern, c.Listener.TLS.Enabled = "sni", "b{id}.example.com", false
		}, "routing.mode", "sni needs listener.tls.enabled"),
		c("routing mode", func(c *config.Config) { c.Routing.Mode = "mesh" }, "routing.mode", "must be sidecar"),
		c("two token keys", func(c *config.Config) { c.Tokens.SecretKey = "k" }, "delegation_tokens", "set only one of"),
		c("token key list and single key", func(c *config.Config) { c.Tokens.Keys = []config.TokenKey{{ID: "k1", Secret: "s1"}} },
			"delegation_tokens.keys: ", "not both"),
		c("token key without id", func(c *config.Config) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k1", Secret: "s1"}, {Secret: "s2"}}
		}, "delegation_tokens.keys[1].id: ", "required"),
		c("token key id not plain", func(c *config.Config) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "key one", Secret: "s1"}}
		}, "delegation_tokens.keys[0].id: ", "must be 1 to 64 letters"),
		c("token key id twice", func(c *config.Config) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k1", Secret: "s1"}, {ID: "k1", Secret: "s2"}}
		}, "delegation_tokens.keys[1].id: ", `"k1" is listed twice`),
		c("token key without secret", func(c *config.Config) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k1"}}
		}, "delegation_tokens.keys[0]: ", "set exactly one of secret and file"),
		c("token key with secret and file", func(c *config.Config) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k1", Secret: "s1", File: "/run/k1"}}
		}, "delegation_tokens.keys[0]: ", "set exactly one of secret and file"),
		c("tokens without state", func(c *config.Config) { c.State.Dir = "" }, "state.dir", "required when delegation tokens are enabled"),
		c("state backend", func(c *config.Config) { c.State.Backend = "etcd" }, "state.backend", "must be local or kafka"),
		c("kafka state without keys", func(c *config.Config) { c.State.Backend, c.State.Dir = "kafka", "" },
			"state.kafka.key_file", "required when state.backend is kafka"),
		c("kafka state topic", func(c *config.Config) {
			c.State.Backend, c.State.Dir, c.State.Kafka.KeyFile, c.State.Kafka.Topic = "kafka", "", "/keys", "state topic"
		}, "state.kafka.topic", "a topic name holds only"),
		c("kafka state replication factor", func(c *config.Config) {
			c.State.Backend, c.State.Dir, c.State.Kafka.KeyFile, c.State.Kafka.ReplicationFactor = "kafka", "", "/keys", 40000
		}, "state.kafka.replication_factor", "is outside 1..32767"),
		c("kafka state min.insync.replicas", func(c *config.Config) {
			c.State.Backend, c.State.Dir, c.State.Kafka.KeyFile, c.State.Kafka.MinInsyncReplicas = "kafka", "", "/keys", 4
		}, "state.kafka.min_insync_replicas", "is outside 1..state.kafka.replication_factor (3)"),
		c("token store", func(c *config.Config) { c.Tokens.Store = "kafka" }, "delegation_tokens.store", "must be proxy or broker"),
		c("broker token store without a key", func(c *config.Config) { c.Tokens.Store, c.Tokens.MasterKeyFile = "broker", "" },
			"delegation_tokens", "a key is required when delegation_tokens.store is broker"),
		c("broker token store without upstream sasl", func(c *config.Config) { c.Tokens.Store, c.Upstream.SASL = "broker", config.UpstreamSASL{} },
			"upstream.sasl.mechanism", "required when delegation_tokens.store is broker"),
		c("broker token store with two keys", func(c *config.Config) {
			c.Tokens.Store, c.Tokens.MasterKeyFile = "broker", ""
			c.Tokens.Keys = []config.TokenKey{{ID: "a", Secret: "x"}, {ID: "b", Secret: "y"}}
		}, "delegation_tokens.keys", "at most one key when delegation_tokens.store is broker"),
		c("super user", func(c *config.Config) { c.Authz.SuperUsers = []string{"admin"} }, "authorization.super_users", "is not Type:Name"),
		c("log level", func(c *config.Config) { c.Log.Level = "loud" }, "log.level", "must be debug"),
		c("log format", func(c *config.Config) { c.Log.Format = "xml" }, "log.format", "must be json or console"),
	}
}

// fileRefusals: one case per file the proxy must load, and per listener it
// must bind.
func fileRefusals() []refusal {
	c := func(name string, mod func(c *config.Config, f fixture), want ...string) refusal {
		return refusal{name: name, mod: mod, want: want}
	}
	return []refusal{
		c("listener cert missing", func(c *config.Config, _ fixture) { c.Listener.TLS.CertFile = "/nonexistent/cert.pem" }, "listener.tls.cert_file", "no such file"),
		c("listener cert not PEM", func(c *config.Config, f fixture) { c.Listener.TLS.CertFile = f.garbage }, "listener.tls.cert_file, key_file", "PEM"),
		c("listener key missing", func(c *config.Config, _ fixture) { c.Listener.TLS.KeyFile = "/nonexistent/key.pem" }, "listener.tls.key_file", "no such file"),
		c("listener key of another cert", func(c *config.Config, f fixture) { c.Listener.TLS.KeyFile = f.otherKey }, "listener.tls.cert_file, key_file", "does not match"),
		c("client CA missing", func(c *config.Config, _ fixture) { c.Listener.TLS.ClientCAFile = "/nonexistent/ca.pem" }, "listener.tls.client_ca_file", "no such file"),
		c("client CA not PEM", func(c *config.Config, f fixture) { c.Listener.TLS.ClientCAFile = f.garbage }, "listener.tls.client_ca_file", "no PEM certificates"),
		c("upstream CA missing", func(c *config.Config, _ fixture) { c.Upstream.TLS.CAFile = "/nonexistent/ca.pem" }, "upstream.tls.ca_file", "no such file"),
		c("upstream CA not PEM", func(c *config.Config, f fixture) { c.Upstream.TLS.CAFile = f.garbage }, "upstream.tls.ca_file", "no PEM certificates"),
		c("upstream cert missing", func(c *config.Config, _ fixture) { c.Upstream.TLS.CertFile = "/nonexistent/cert.pem" }, "upstream.tls.cert_file", "no such file"),
		c("upstream key missing", func(c *config.Config, _ fixture) { c.Upstream.TLS.KeyFile = "/nonexistent/key.pem" }, "upstream.tls.key_file", "no such file"),
		c("upstream key of another cert", func(c *config.Config, f fixture) { c.Upstream.TLS.KeyFile = f.otherKey }, "upstream.tls.cert_file, key_file", "does not match"),
		c("credentials file missing", func(c *config.Config, _ fixture) { c.Credentials.File = "/nonexistent/users.yaml" }, "credentials.file", "no such file"),
		c("credentials file broken", func(c *config.Config, f fixture) { c.Credentials.File = f.badUsers }, "credentials.file", "unknown key"),
		c("secrets dir missing", func(c *config.Config, _ fixture) { c.Credentials.SecretsDir = "/nonexistent/secrets" }, "credentials.secrets_dir", "no such file"),
		c("secret malformed", func(c *config.Config, f fixture) { c.Credentials.SecretsDir = f.badSecrets }, "credentials.secrets_dir", "AmazonMSK_carol"),
		c("upstream password file missing", func(c *config.Config, _ fixture) { c.Upstream.SASL.PasswordFile = "/nonexistent/pw" }, "upstream.sasl.password_file", "no such file"),
		c("upstream password file empty", func(c *config.Config, f fixture) { c.Upstream.SASL.PasswordFile = f.empty }, "upstream.sasl.password_file", "holds no secret"),
		c("upstream password file newline", func(c *config.Config, f fixture) { c.Upstream.SASL.PasswordFile = f.newline }, "upstream.sasl.password_file", "holds no secret"),
		c("identity password file missing", func(c *config.Config, _ fixture) { c.Upstream.Identities[0].SASL.PasswordFile = "/nonexistent/pw" },
			"upstream.identities[0].sasl.password_file", "no such file"),
		c("identity password file newline", func(c *config.Config, f fixture) { c.Upstream.Identities[0].SASL.PasswordFile = f.newline },
			"upstream.identities[0].sasl.password_file", "holds no secret"),
		c("token key file missing", func(c *config.Config, _ fixture) { c.Tokens.MasterKeyFile = "/nonexistent/key" }, "delegation_tokens.master_key_file", "no such file"),
		c("token key file empty", func(c *config.Config, f fixture) { c.Tokens.MasterKeyFile = f.empty }, "delegation_tokens.master_key_file", "holds no secret"),
		c("token key file newline", func(c *config.Config, f fixture) { c.Tokens.MasterKeyFile = f.newline }, "delegation_tokens.master_key_file", "holds no secret"),
		c("token key file crlf", func(c *config.Config, f fixture) { c.Tokens.MasterKeyFile = f.crlf }, "delegation_tokens.master_key_file", "holds no secret"),
		c("token key list file missing", func(c *config.Config, _ fixture) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k2", File: "/nonexistent/key"}, {ID: "k1", Secret: "s1"}}
		}, "delegation_tokens.keys[0].file", "no such file"),
		c("token key list file empty", func(c *config.Config, f fixture) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k2", File: f.newline}}
		}, "delegation_tokens.keys[0].file", "holds no secret"),
		c("token keys with one secret", func(c *config.Config, f fixture) {
			c.Tokens.MasterKeyFile, c.Tokens.Keys = "", []config.TokenKey{{ID: "k2", File: f.tokenKey}, {ID: "k1", Secret: "token-master-key"}}
		}, "delegation_tokens.keys[1]: ", `the same secret as key "k2"`),
		c("state key file missing", func(c *config.Config, _ fixture) {
			c.State.Backend, c.State.Kafka.KeyFile = "kafka", "/nonexistent/state.keys"
		}, "state.kafka.key_file", "no such file"),
		c("state key file empty", func(c *config.Config, f fixture) { c.State.Backend, c.State.Kafka.KeyFile = "kafka", f.empty },
			"state.kafka.key_file", "no key"),
		c("state dir is a file", func(c *config.Config, f fixture) { c.State.Dir = f.regular }, "state.dir", "not a directory"),
		c("state dir under a file", func(c *config.Config, f fixture) { c.State.Dir = filepath.Join(f.regular, "state") }, "state.dir", "not a directory"),
		c("state database corrupt", func(c *config.Config, f fixture) { c.State.Dir = f.corruptState }, "state.dir", "open state.db"),
		c("state dir others can read", func(c *config.Config, f fixture) { c.State.Dir = f.sharedState }, "state.dir", "mode 0750", "chmod 700"),
		c("listener address not local", func(c *config.Config, _ fixture) { c.Listener.Address = "192.0.2.1:0" }, "listener.address", "cannot assign requested address"),
		c("metrics address not local", func(c *config.Config, _ fixture) { c.Metrics.Address = "192.0.2.1:0" }, "metrics.address", "cannot assign requested address"),
		c("profiling address not local", func(c *config.Config, _ fixture) { c.Metrics.Pprof, c.Metrics.PprofAddress = true, "192.0.2.1:0" },
			"metrics.pprof_address", "cannot assign requested address"),
	}
}

// result is one run of the command function.
type result struct {
	code           int
	stdout, stderr string
}

// problems are the lines printed under "configuration has problems:".
func (r result) problems(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "  - "); ok {
			lines = append(lines, p)
		}
	}
	return lines
}

func runCommand(ctx context.Context, args, env []string) result {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr, env)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// writeCase writes the case's configuration into a fresh directory and
// returns the command-line arguments that load it.
func writeCase(t *testing.T, f fixture, rc refusal) []string {
	t.Helper()
	dir := t.TempDir()
	cfg := f.base(filepath.Join(dir, "state"))
	if rc.mod != nil {
		rc.mod(&cfg, f)
	}
	data, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if rc.edit != nil {
		text = rc.edit(text)
		if text == string(data) {
			t.Fatal("the edit changed nothing: the marshalled form moved")
		}
	}
	path := filepath.Join(dir, "scram-proxy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return append([]string{"--config", path}, rc.args...)
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestCheckConfigReportsWhatServeRefuses feeds check-config every
// configuration serve refuses, one rule or file at a time, through the
// command functions themselves: check-config must report exactly that one
// problem with its key and exit 2, and serve must refuse the same
// configuration with the same problem before it listens. The valid base
// configuration passes both.
func TestCheckConfigReportsWhatServeRefuses(t *testing.T) {
	f := newFixture(t)
	stopped, cancel := context.WithCancel(context.Background())
	cancel() // serve returns at once if it starts at all

	t.Run("valid base", func(t *testing.T) {
		args := writeCase(t, f, refusal{})
		if r := runCommand(context.Background(), append([]string{"check-config"}, args...), nil); r.code != exitOK || !strings.HasPrefix(r.stdout, "configuration OK") {
			t.Fatalf("check-config exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runCommand(stopped, append([]string{"serve"}, args...), nil); r.code != exitOK {
			t.Fatalf("serve exit %d:\n%s", r.code, r.stderr)
		}
	})

	cases := append(validationRefusals(), fileRefusals()...)
	reported := map[string]string{} // case name → the problem check-config printed
	for _, rc := range cases {
		t.Run(rc.name, func(t *testing.T) {
			args := writeCase(t, f, rc)
			chk := runCommand(context.Background(), append([]string{"check-config"}, args...), rc.env)
			problems := chk.problems(chk.stdout)
			if chk.code != exitUsage || len(problems) != 1 || !containsAll(problems[0], rc.want) {
				t.Fatalf("check-config exit %d, want %d and one problem with %q:\n%s%s", chk.code, exitUsage, rc.want, chk.stdout, chk.stderr)
			}
			reported[rc.name] = problems[0]
			srv := runCommand(stopped, append([]string{"serve"}, args...), rc.env)
			if srv.code != exitUsage || !containsAll(strings.Join(srv.problems(srv.stderr), "\n"), rc.want) {
				t.Fatalf("serve exit %d, want %d and a problem with %q:\n%s", srv.code, exitUsage, rc.want, srv.stderr)
			}
		})
	}
	t.Logf("%d refused configurations, each reported by check-config and refused by serve", len(cases))

	// Every rule in config.Validate has a case above: a new rule without
	// one fails here.
	var lines []string
	for _, p := range reported {
		lines = append(lines, p)
	}
	for _, rule := range validateRules(t) {
		found := false
		for _, l := range lines {
			if rule.key.MatchString(l) && strings.Contains(l, rule.fragment) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no case covers the rule at internal/config/validate.go:%d (key %s, %q)", rule.line, rule.key, rule.fragment)
		}
	}
}

// rule is one bad(key, format) call of config.Validate: a pattern for the
// problem's key, and the longest literal part of its message.
type rule struct {
	line     int
	key      *regexp.Regexp
	fragment string
}

// validateRules reads internal/config/validate.go and lists its rules.
func validateRules(t *testing.T) []rule {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "../../internal/config/validate.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	verb := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z]`)
	fragment := func(format string) string {
		longest := ""
		for _, part := range verb.Split(format, -1) {
			if p := strings.TrimSpace(part); len(p) > len(longest) {
				longest = p
			}
		}
		return longest
	}
	unquote := func(e ast.Expr) (string, bool) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, err := strconv.Unquote(lit.Value)
			return s, err == nil
		}
		return "", false
	}
	var boundKeys []string // the intBound and durBound tables
	var rules []rule
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit: // []intBound{{"listener.max_connections", ...}, ...}
			at, ok := n.Type.(*ast.ArrayType)
			if !ok {
				return true
			}
			if id, ok := at.Elt.(*ast.Ident); !ok || (id.Name != "intBound" && id.Name != "durBound") {
				return true
			}
			for _, e := range n.Elts {
				if row, ok := e.(*ast.CompositeLit); ok && len(row.Elts) > 0 {
					if k, ok := unquote(row.Elts[0]); ok {
						boundKeys = append(boundKeys, k)
					}
				}
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); !ok || id.Name != "bad" || len(n.Args) < 2 {
				return true
			}
			format, _ := unquote(n.Args[1])
			r := rule{line: fset.Position(n.Pos()).Line, fragment: fragment(format)}
			switch k := n.Args[0].(type) {
			case *ast.BasicLit: // bad("listener.address", ...)
				s, _ := unquote(k)
				r.key = regexp.MustCompile("^" + regexp.QuoteMeta(s) + ": ")
			case *ast.BinaryExpr: // bad(key+".mechanism", ...)
				s, _ := unquote(k.Y)
				r.key = regexp.MustCompile(`^\S+` + regexp.QuoteMeta(s) + ": ")
			case *ast.Ident: // bad(key, ...) inside a helper
				r.key = regexp.MustCompile(`^\S+: `)
			case *ast.SelectorExpr: // bad(b.key, ...) over a bounds table
				r.key = nil
			default:
				t.Fatalf("validate.go:%d: bad() with a key this test cannot read", r.line)
			}
			rules = append(rules, r)
		}
		return true
	})
	var out []rule
	for _, r := range rules {
		if r.key != nil {
			out = append(out, r)
			continue
		}
		for _, k := range boundKeys {
			out = append(out, rule{line: r.line, key: regexp.MustCompile("^" + regexp.QuoteMeta(k) + ": "), fragment: r.fragment})
		}
	}
	if len(out) < 40 {
		t.Fatalf("read only %d rules from validate.go: the parser no longer understands it", len(out))
	}
	return out
}

// TestCheckConfigWarnsWhereAProxyRuns pins the one deliberate difference:
// an address a running process holds makes serve refuse (it cannot bind),
// while check-config, typically run next to the proxy it checks, warns and
// passes, since serve would bind once that proxy stops.
func TestCheckConfigWarnsWhereAProxyRuns(t *testing.T) {
	f := newFixture(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	args := writeCase(t, f, refusal{mod: func(c *config.Config, _ fixture) { c.Listener.Address = held.Addr().String() }})
	chk := runCommand(context.Background(), append([]string{"check-config"}, args...), nil)
	if chk.code != exitOK || !strings.Contains(chk.stderr, "not checked: listener.address") {
		t.Fatalf("check-config exit %d:\n%s%s", chk.code, chk.stdout, chk.stderr)
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	srv := runCommand(stopped, append([]string{"serve"}, args...), nil)
	if srv.code != exitUsage || !strings.Contains(srv.stderr, "listener.address: ") || !strings.Contains(srv.stderr, "address already in use") {
		t.Fatalf("serve exit %d:\n%s", srv.code, srv.stderr)
	}
}

// syncBuffer collects a running command's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProfilingStaysOffTheMetricsAddress: with metrics.pprof on, Go's
// profiles (and /debug/pprof/cmdline, the command line) are served on
// metrics.pprof_address, never on metrics.address, which Prometheus reaches
// over the network.
func TestProfilingStaysOffTheMetricsAddress(t *testing.T) {
	f := newFixture(t)
	args := writeCase(t, f, refusal{mod: func(c *config.Config, _ fixture) { c.Metrics.Pprof = true }})
	env := []string{"SCRAM_PROXY_METRICS_PPROF_ADDRESS=127.0.0.1:0"} // a free port, not the default 6060
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), io.Discard, logs, env)
	}()
	defer func() { cancel(); <-done }()

	// The listeners' addresses, from the start-up log.
	addrs := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for addrs["metrics and health listening"] == "" || addrs["profiling listening"] == "" {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited with %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics and profiling listeners were not logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry struct{ Msg, Address string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Address != "" {
				addrs[entry.Msg] = entry.Address
			}
		}
	}
	get := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	metrics, profiling := addrs["metrics and health listening"], addrs["profiling listening"]
	if code := get(metrics, "/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("metrics.address %s serves /debug/pprof/cmdline: %d", metrics, code)
	}
	if code := get(metrics, "/metrics"); code != http.StatusOK {
		t.Errorf("metrics.address %s: /metrics %d", metrics, code)
	}
	if code := get(profiling, "/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("metrics.pprof_address %s: /debug/pprof/cmdline %d", profiling, code)
	}
	if host, _, _ := net.SplitHostPort(profiling); !net.ParseIP(host).IsLoopback() {
		t.Errorf("profiling listens on %s, not loopback", profiling)
	}
}
