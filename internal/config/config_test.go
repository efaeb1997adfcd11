package config

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

func load(t *testing.T, args []string, env ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, env)
}

func TestFullExampleLoads(t *testing.T) {
	cfg, err := load(t, []string{"--config", "testdata/full.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Listener.AdvertisedAddress = "broker-0.kafka.svc:9096"
	want.Listener.TLS.CertFile = "/etc/scram-proxy/tls/server.pem"
	want.Listener.TLS.KeyFile = "/etc/scram-proxy/tls/server-key.pem"
	want.Credentials.File = "/etc/scram-proxy/users.yaml"
	want.Upstream.BootstrapServers = []string{"127.0.0.1:9092"}
	want.Authz.SuperUsers = []string{}
	want.Routing.Brokers = map[string]string{}
	want.Routing.BrokerPorts = map[string]int{}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestMinimalTakesDefaults(t *testing.T) {
	cfg, err := load(t, []string{"--config", "testdata/minimal.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listener.Address != "0.0.0.0:9096" || !cfg.Listener.TLS.Enabled || cfg.SASL.FailedAuthDelay != 100*time.Millisecond ||
		cfg.SASL.MaxReceiveSize != 524288 || cfg.SASL.AuthTimeout != 10*time.Second || cfg.SASL.Mechanisms[0] != "SCRAM-SHA-512" {
		t.Fatalf("%+v", cfg)
	}
}

func TestPrecedenceFlagsEnvFileDefaults(t *testing.T) {
	file := []string{"--config", "testdata/full.yaml"}
	// file beats default
	cfg, _ := load(t, file)
	if cfg.Listener.AdvertisedAddress != "broker-0.kafka.svc:9096" {
		t.Fatal("file value lost")
	}
	env := []string{
		"SCRAM_PROXY_LISTENER_ADVERTISED_ADDRESS=env-host:1",
		"SCRAM_PROXY_SASL_MECHANISMS=SCRAM-SHA-256, SCRAM-SHA-512",
		"SCRAM_PROXY_SASL_AUTH_TIMEOUT=3s",
		"PATH=/bin",
	}
	cfg, err := load(t, file, env...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listener.AdvertisedAddress != "env-host:1" || !reflect.DeepEqual(cfg.SASL.Mechanisms, []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}) ||
		cfg.SASL.AuthTimeout != 3*time.Second {
		t.Fatalf("env did not beat file: %+v", cfg)
	}
	cfg, err = load(t, append(file, "--listener.advertised_address", "flag-host:2", "--sasl.mechanisms", "SCRAM-SHA-512",
		"--sasl.auth_timeout", "7s"), env...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listener.AdvertisedAddress != "flag-host:2" || !reflect.DeepEqual(cfg.SASL.Mechanisms, []string{"SCRAM-SHA-512"}) ||
		cfg.SASL.AuthTimeout != 7*time.Second {
		t.Fatalf("flag did not beat env: %+v", cfg)
	}
}

func TestUnknownKeysNameThemselves(t *testing.T) {
	_, err := load(t, []string{"--config", "testdata/typo.yaml"})
	if err == nil {
		t.Fatal("typo accepted")
	}
	for _, want := range []string{"listener.adress (line 2): unknown configuration key", "sasl.mechanism (line 6): unknown configuration key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	_, err = load(t, []string{"--config", "testdata/minimal.yaml"}, "SCRAM_PROXY_LISTENER_ADRESS=x")
	if err == nil || !strings.Contains(err.Error(), "SCRAM_PROXY_LISTENER_ADRESS: unknown environment variable") {
		t.Fatalf("unknown env: %v", err)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	_, err := load(t, []string{"--config", "testdata/bad.yaml"})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, key := range []string{"listener.advertised_address", "listener.tls.cert_file", "listener.tls.key_file",
		"listener.tls.min_version", "listener.max_request_size", "sasl.mechanisms: unsupported mechanism \"PLAIN\"",
		"sasl.mechanisms: SCRAM-SHA-512 listed twice", "sasl.auth_timeout", "credentials.file: required",
		"upstream.bootstrap_servers", "log.level", "log.format"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("no complaint about %s in:\n%v", key, err)
		}
	}
}

func TestEveryKeyHasAFlagAndADefaultExample(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	for _, k := range keys() {
		if fs.Lookup(k.name) == nil && !k.fileOnly() {
			t.Errorf("no flag for %s", k.name)
		}
	}
}

func FuzzLoadYAML(f *testing.F) {
	for _, p := range []string{"testdata/full.yaml", "testdata/typo.yaml", "testdata/bad.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, data string) {
		known := map[string]key{}
		for _, k := range keys() {
			known[k.name] = k
		}
		_ = checkFileKeys([]byte(data), known)
	})
}

// TestMarshalRoundTrips writes a configuration with every kind of key set
// and loads it back unchanged.
func TestMarshalRoundTrips(t *testing.T) {
	c := Defaults()
	c.Listener.AdvertisedAddress = "proxy.example.com:9096"
	c.Listener.TLS.CertFile, c.Listener.TLS.KeyFile = "/tls/c.pem", "/tls/k.pem"
	c.SASL.Mechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}
	c.SASL.FailedAuthDelay = 0
	c.Credentials.File = "/etc/users.yaml"
	c.Upstream.BootstrapServers = []string{"b0:9092", "b1:9092"}
	c.Upstream.SASL = UpstreamSASL{Mechanism: "PLAIN", Username: "proxy", PasswordFile: "/run/pw"}
	c.Upstream.Identities = []Identity{{Principals: []string{"User:a*"}, SASL: UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "a", Password: "x"}}}
	c.Routing = Routing{Mode: "port-per-broker", AdvertisedHost: "proxy", BrokerPortBase: 9100,
		Brokers:     map[string]string{}, // Load gives an empty map, not nil
		BrokerPorts: map[string]int{"1001": 9201, "7": 9300}}
	c.Tokens.SecretKey = "k"
	c.Tokens.Keys = []TokenKey{} // Load gives an empty list, not nil
	c.State.Dir = "/var/lib/scram-proxy"
	c.Authz.SuperUsers = []string{"User:admin"}
	c.Listener.MaxConnectionsPerIP = 50
	c.Listener.MaxConnectionsPerIPOverrides = []string{"10.1.2.3=4", "gw.example.com=0"}
	data, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(fs, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip changed the configuration:\n got %+v\nwant %+v\n%s", got, c, data)
	}
}

// TestSecretsAreRefusedAsFlags: a password or token key given as a flag
// would be readable by every local user (ps) and at /debug/pprof/cmdline.
// Each is refused, naming the file key and the environment variable to use
// instead; the environment still sets it.
func TestSecretsAreRefusedAsFlags(t *testing.T) {
	for _, tc := range []struct{ key, fileKey, env string }{
		{"upstream.sasl.password", "upstream.sasl.password_file", "SCRAM_PROXY_UPSTREAM_SASL_PASSWORD"},
		{"delegation_tokens.master_key", "delegation_tokens.master_key_file", "SCRAM_PROXY_DELEGATION_TOKENS_MASTER_KEY"},
		{"delegation_tokens.secret_key", "delegation_tokens.master_key_file", "SCRAM_PROXY_DELEGATION_TOKENS_SECRET_KEY"},
	} {
		_, err := load(t, []string{"--config", "testdata/minimal.yaml", "--state.dir", "/var/lib/x", "--" + tc.key, "s3cret"})
		if err == nil {
			t.Errorf("--%s accepted on the command line", tc.key)
			continue
		}
		for _, want := range []string{"--" + tc.key + ": ", tc.fileKey, tc.env} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("--%s: %v; want it to name %q", tc.key, err, want)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("--%s: the error repeats the secret: %v", tc.key, err)
		}
	}
	cfg, err := load(t, []string{"--config", "testdata/minimal.yaml"}, "SCRAM_PROXY_DELEGATION_TOKENS_SECRET_KEY=from-env", "SCRAM_PROXY_STATE_DIR=/var/lib/x")
	if err != nil || cfg.Tokens.SecretKey != "from-env" {
		t.Fatalf("secret from the environment: %q, %v", cfg.Tokens.SecretKey, err)
	}
}

// TestExampleNamesEveryKey: configs/example.yaml documents every key and
// loads as it stands.
func TestExampleNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := prefix + n.Content[i].Value
			named[name] = true
			walk(n.Content[i+1], name+".")
		}
	}
	walk(doc.Content[0], "")
	for _, k := range keys() {
		if !named[k.name] {
			t.Errorf("configs/example.yaml does not list %s", k.name)
		}
	}
	if _, err := load(t, []string{"--config", "../../configs/example.yaml"}); err != nil {
		t.Fatalf("configs/example.yaml does not load: %v", err)
	}
}

// TestProfilingDefaultsToLoopback: /debug/pprof/ is unauthenticated and shows
// the command line; by default it is reachable from this host only.
func TestProfilingDefaultsToLoopback(t *testing.T) {
	host, _, err := net.SplitHostPort(Defaults().Metrics.PprofAddress)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Fatalf("metrics.pprof_address defaults to %q, not a loopback address", Defaults().Metrics.PprofAddress)
	}
}
