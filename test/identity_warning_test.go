package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

// startWarning waits for the proxy's start-up warning about the identity
// clients act with upstream and returns its fields.
func startWarning(t *testing.T, e *proxyEnv) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			if msg, _ := rec["msg"].(string); rec["level"] == "warn" && strings.Contains(msg, "upstream with the proxy's identity") {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start-up warning about the upstream identity; logs:\n%s", tail(e.logs.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStartWarnsThatClientsActWithTheProxysIdentity: the proxy checks who a
// client is, not what it may do upstream. At start it says so: without
// upstream.identities every client acts as the proxy's upstream identity;
// with them, the clients no entry matches do. The password never appears.
func TestStartWarnsThatClientsActWithTheProxysIdentity(t *testing.T) {
	sasl := []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "proxy", "proxy-secret")}

	e := startProxy(t, envOptions{kfakeOpts: sasl, config: func(c *config.Config) { c.Upstream.SASL = upstreamSuperUser() }})
	w := startWarning(t, e)
	if msg := w["msg"].(string); !strings.HasPrefix(msg, "every authenticated client acts upstream with the proxy's identity") {
		t.Errorf("without upstream.identities: %q", msg)
	}
	if msg := w["msg"].(string); !strings.Contains(msg, "set upstream.principal_mode: client to have each client act as itself") {
		t.Errorf("the warning does not name upstream.principal_mode: %q", msg)
	}
	if w["upstream_identity"] != "SCRAM-SHA-512 user proxy (upstream.sasl)" {
		t.Errorf("upstream_identity %v", w["upstream_identity"])
	}

	mapped := startProxy(t, envOptions{kfakeOpts: sasl, config: func(c *config.Config) {
		c.Upstream.SASL = upstreamSuperUser()
		c.Upstream.Identities = []config.Identity{{Principals: []string{"User:alice"},
			SASL: config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "proxy", Password: "proxy-secret"}}}
	}})
	w = startWarning(t, mapped)
	if msg := w["msg"].(string); !strings.HasPrefix(msg, "clients that no upstream.identities entry matches act upstream with the proxy's identity") {
		t.Errorf("with upstream.identities: %q", msg)
	}
	for _, env := range []*proxyEnv{e, mapped} {
		if strings.Contains(env.logs.String(), "proxy-secret") {
			t.Error("the upstream password is in the logs")
		}
	}
}
