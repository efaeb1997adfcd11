package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTokenKeySources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		t    Tokens
		want string
	}{
		{"none: tokens off", Tokens{}, ""},
		{"master_key", Tokens{MasterKey: "m"}, "m"},
		{"secret_key over master_key", Tokens{MasterKey: "m", SecretKey: "s"}, "s"},
		{"file over both, line break removed", Tokens{MasterKey: "m", SecretKey: "s", MasterKeyFile: file}, "from-file"},
	} {
		got, err := tc.t.Key()
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestResolveNamesEveryProblemAndRedacts(t *testing.T) {
	dir := t.TempDir()
	nl := filepath.Join(dir, "nl")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(nl, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	c.Tokens.MasterKeyFile = nl
	c.Upstream.SASL = UpstreamSASL{Mechanism: "PLAIN", Username: "p", PasswordFile: filepath.Join(dir, "missing")}
	c.Upstream.Identities = []Identity{
		{SASL: UpstreamSASL{Mechanism: "PLAIN", Username: "a", PasswordFile: pw}},
		{SASL: UpstreamSASL{Mechanism: "PLAIN", Username: "b", Password: "direct"}},
	}
	c.Routing.Brokers = map[string]string{"1": "a:1", "x": "b:1"}
	c.Routing.BrokerPorts = map[string]int{"2": 9102}
	r, err := c.Resolve()
	for _, want := range []string{"delegation_tokens.master_key_file: ", "upstream.sasl.password_file: ", "routing.brokers: \"x\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want exactly three problems:\n%v", err)
	}
	if len(r.IdentityPasswords) != 2 || r.IdentityPasswords[0] != "hunter2" || r.IdentityPasswords[1] != "direct" {
		t.Errorf("identity passwords %d", len(r.IdentityPasswords))
	}
	if r.Brokers[1] != "a:1" || r.BrokerPorts[2] != 9102 {
		t.Errorf("node maps %v %v", r.Brokers, r.BrokerPorts)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, r); strings.Contains(s, "hunter2") || strings.Contains(s, "direct") {
			t.Errorf("%s prints a secret: %s", verb, s)
		}
	}
}

func TestConnectionsPerIPOverrides(t *testing.T) {
	c := Defaults()
	c.Listener.MaxConnectionsPerIPOverrides = []string{"10.0.0.9=0", "::ffff:10.0.0.10 = 7", "localhost=3", "127.0.0.1=5"}
	got, err := resolveConnOverrides(c.Listener.MaxConnectionsPerIPOverrides, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]int{"10.0.0.9": 0, "10.0.0.10": 7, "127.0.0.1": 5} {
		if n, ok := got[netip.MustParseAddr(ip)]; !ok || n != want {
			t.Errorf("%s: %d (%v), want %d", ip, n, ok, want)
		}
	}
	for _, bad := range []string{"10.0.0.1", "=3", "10.0.0.1=-1", "10.0.0.1=x", "bad_host=1", "a=1,a=2"} {
		entries := strings.Split(bad, ",")
		if _, err := parseConnOverrides(entries); err == nil {
			t.Errorf("%q accepted", bad)
		}
		c.Listener.MaxConnectionsPerIPOverrides = entries
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "listener.max_connections_per_ip_overrides: ") {
			t.Errorf("%q: validation says %v", bad, err)
		}
	}
}

func TestTokenKeyList(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "k2")
	if err := os.WriteFile(file, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Tokens{SecretKey: "only"}.ResolveKeys()
	if err != nil || len(got) != 1 || got[0] != (ResolvedTokenKey{ID: DefaultTokenKeyID, Secret: "only"}) {
		t.Fatalf("the single-key settings: %v %v", got, err)
	}
	if got, err := (Tokens{}).ResolveKeys(); err != nil || len(got) != 0 {
		t.Fatalf("no key: %v %v", got, err)
	}
	got, err = Tokens{Keys: []TokenKey{{ID: "k2", File: file}, {ID: "k1", Secret: "first"}}}.ResolveKeys()
	if err != nil || len(got) != 2 || got[0] != (ResolvedTokenKey{ID: "k2", Secret: "second"}) || got[1] != (ResolvedTokenKey{ID: "k1", Secret: "first"}) {
		t.Fatalf("a key list, in order, file read: %v %v", got, err)
	}
	if s := fmt.Sprintf("%v %#v %+v", got, got, got[0]); strings.Contains(s, "second") || strings.Contains(s, "first") {
		t.Fatalf("resolved keys print their secrets: %s", s)
	}
	_, err = Tokens{Keys: []TokenKey{{ID: "k2", File: file}, {ID: "k1", Secret: "second"}}}.ResolveKeys()
	if err == nil || !strings.Contains(err.Error(), `delegation_tokens.keys[1]: the same secret as key "k2"`) {
		t.Fatalf("one secret under two ids: %v", err)
	}
}
