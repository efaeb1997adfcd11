package config

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/spf13/pflag"
)

// FuzzLoadConfigFile loads an arbitrary configuration file the way the
// binary does (--config, then Validate). Nothing may panic, and a
// configuration that validates must hold only routing keys that are broker
// node ids (decimal int32, no sign or leading zero), which Resolve then
// reads without error. Resolve itself is not called: it reads the secret
// files the input names, and an input may name any file.
func FuzzLoadConfigFile(f *testing.F) {
	for _, p := range []string{"testdata/full.yaml", "testdata/minimal.yaml", "testdata/typo.yaml", "testdata/bad.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A valid base, with routing maps whose keys are and are not node ids.
	const base = "listener:\n  advertised_address: proxy:9096\n  tls:\n    cert_file: /c.pem\n    key_file: /k.pem\ncredentials:\n  file: /u.yaml\nupstream:\n  bootstrap_servers: [b:9092]\n"
	f.Add([]byte(base + "routing:\n  mode: port-per-broker\n  advertised_host: proxy\n  broker_ports:\n    \"1001\": 9201\n    \"7\": 9300\n"))
	f.Add([]byte(base + "routing:\n  mode: port-per-broker\n  advertised_host: proxy\n  broker_ports:\n    \"007\": 9300\n    \"-1\": 1\n"))
	f.Add([]byte(base + "routing:\n  brokers:\n    \"0\": \"b0:9096\"\n    \"2147483647\": \"x:1\"\n"))
	f.Add([]byte(base + "routing:\n  brokers:\n    \"2147483648\": \"x:1\"\n    \" 1\": \"y:1\"\n"))
	f.Add([]byte(base + "routing:\n  brokers: 3\n  broker_ports: {a: b}\n"))
	path := filepath.Join(f.TempDir(), "c.yaml") // rewritten by every input
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		RegisterFlags(fs)
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		c, err := Load(fs, nil)
		if err != nil || c.Validate() != nil {
			return
		}
		keys := make([]string, 0, len(c.Routing.Brokers)+len(c.Routing.BrokerPorts))
		for k := range c.Routing.Brokers {
			keys = append(keys, k)
		}
		for k := range c.Routing.BrokerPorts {
			keys = append(keys, k)
		}
		for _, k := range keys {
			n, err := parseNodeID(k)
			if err != nil || n < 0 || strconv.Itoa(int(n)) != k {
				t.Fatalf("valid configuration with routing key %q (%d, %v)", k, n, err)
			}
		}
	})
}
