package testconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

// load reads path the way the binary does.
func load(t *testing.T, path string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	return config.Load(fs, nil)
}

// Every kind of key the configuration has (strings, booleans set to false
// over a true default, numbers, durations, lists, maps, lists of
// structures) comes back from the file as it was written.
func TestWriteThenLoadIsTheSameConfig(t *testing.T) {
	dir := t.TempDir()
	c := config.Defaults()
	c.Listener.Address = "127.0.0.1:19096"
	c.Listener.AdvertisedAddress = "localhost:19096"
	c.Listener.TLS.Enabled = false
	c.Listener.MaxConnections = 7
	c.SASL.Mechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}
	c.SASL.FailedAuthDelay = 250 * time.Millisecond
	c.SASL.MaxReauth = 90 * time.Second
	c.Credentials.File = filepath.Join(dir, "users.yaml")
	c.Upstream.BootstrapServers = []string{"127.0.0.1:1", "127.0.0.1:2"}
	c.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "proxy", Password: "p"}
	c.Upstream.Identities = []config.Identity{{Principals: []string{"User:a*"},
		SASL: config.UpstreamSASL{Mechanism: "SCRAM-SHA-256", Username: "up-a", Password: "pa"}}}
	c.Routing.Brokers = map[string]string{"0": "localhost:19096", "1": "localhost:19097"}
	c.Tokens.MasterKey = "k"
	c.State.Dir = filepath.Join(dir, "state")
	c.Authz.SuperUsers = []string{"User:admin"}
	c.Metrics.Address = ""
	c.Log.Level = "debug"

	path := filepath.Join(dir, "c.yaml")
	if err := Write(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := load(t, path)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("loaded\n%+v\nwrote\n%+v", got, c)
	}
}

func TestOnlyChangedKeysAreWritten(t *testing.T) {
	c := config.Defaults()
	c.SASL.AuthTimeout = 2 * time.Second
	b, err := YAML(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "sasl:\n    auth_timeout: 2s" {
		t.Fatalf("got %q", got)
	}
}
