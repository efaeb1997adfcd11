package test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

// upstreamTLS makes a CA and server certificate for kfake on 127.0.0.1 and
// returns the kfake option and the CA file for the proxy.
func upstreamTLS(t *testing.T) (kfake.Opt, string) {
	ca, err := tlsutil.NewDevCA([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile, err := ca.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), caFile
}

// upstreamSuperUser is the identity the proxy presents to a kfake upstream
// that requires SASL (kfake.Superuser("SCRAM-SHA-512", "proxy", "proxy-secret")).
func upstreamSuperUser() config.UpstreamSASL {
	return config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "proxy", Password: "proxy-secret"}
}

func TestUpstreamTLSAndSCRAM(t *testing.T) {
	tlsOpt, caFile := upstreamTLS(t)
	e := startProxy(t, envOptions{topics: []string{"sec"}, upstreamTLS: true,
		kfakeOpts: []kfake.Opt{tlsOpt, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "proxy", "proxy-secret")},
		config: func(c *config.Config) {
			c.Upstream.TLS = config.UpstreamTLS{Enabled: true, CAFile: caFile}
			c.Upstream.SASL = upstreamSuperUser()
		}})
	rec := &recorder{}
	produceConsume(t, e, scramAuth("alice"), "sec", 10, rec)
	rec.check(t, e)
}

func TestUpstreamIdentityMapping(t *testing.T) {
	allow := func(topic string) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationAll, Allow: true}
	}
	pwFile := filepath.Join(t.TempDir(), "pb")
	if err := os.WriteFile(pwFile, []byte("pass-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startProxy(t, envOptions{topics: []string{"ta", "tb"},
		kfakeOpts: []kfake.Opt{kfake.EnableSASL(), kfake.EnableACLs(),
			kfake.Superuser("SCRAM-SHA-512", "proxy", "proxy-secret"),
			kfake.User("SCRAM-SHA-512", "up-a", "pass-a", allow("ta")),
			kfake.User("SCRAM-SHA-512", "up-b", "pass-b", allow("tb"))},
		config: func(c *config.Config) {
			c.Upstream.SASL = upstreamSuperUser()
			c.Upstream.Identities = []config.Identity{
				{Principals: []string{"User:alice"},
					SASL: config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "up-a", Password: "pass-a"}},
				{Principals: []string{"User:b*"},
					SASL: config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "up-b", PasswordFile: pwFile}},
			}
		}})
	produce := func(user, topic string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth(user)), kgo.DialTLSConfig(e.clientTLS(t)),
			kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Topic: topic, Value: []byte(user)}).FirstErr()
	}
	if err := produce("alice", "ta"); err != nil {
		t.Fatalf("alice (as up-a) to ta: %v", err)
	}
	if err := produce("bob", "tb"); err != nil {
		t.Fatalf("bob (as up-b) to tb: %v", err)
	}
	if err := produce("alice", "tb"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice (as up-a) to tb: %v, want the broker's TOPIC_AUTHORIZATION_FAILED", err)
	}
}

func TestListenerCertificateRotation(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"rot"}})
	old, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(e.clientTLS(t)),
		kgo.DefaultProduceTopic("rot"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	next, err := tlsutil.NewDevCA([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"server.pem": next.CertPEM, "server-key.pem": next.KeyPEM} {
		if err := os.WriteFile(filepath.Join(e.configDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	newCfg, _ := tlsutil.ClientConfig(next.CAPEM, "localhost")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := tls.Dial("tcp", e.Addr, newCfg)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new certificate not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The connection made before the rotation keeps working.
	if err := old.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("old connection after rotation: %v", err)
	}
}

// TestUpstreamReauthentication: the upstream broker limits SASL sessions
// (connections.max.reauth.ms = 2 s); the proxy re-authenticates its
// upstream connections in-band and the client's connection carries on.
func TestUpstreamReauthentication(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"ura"},
		kfakeOpts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "proxy", "proxy-secret"),
			kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "2000"})},
		config: func(c *config.Config) { c.Upstream.SASL = upstreamSuperUser() }})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(e.clientTLS(t)),
		kgo.DefaultProduceTopic("ura"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end := time.Now().Add(6 * time.Second)
	n := 0
	for time.Now().Before(end) {
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("r")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", n, err)
		}
		n++
		time.Sleep(100 * time.Millisecond)
	}
	logs := e.logs.String()
	reauths := strings.Count(logs, `"msg":"upstream re-authenticated"`)
	logins := strings.Count(logs, `"msg":"authenticated"`)
	if reauths < 2 || logins > 4 {
		t.Fatalf("%d records; %d upstream re-authentications, %d client logins", n, reauths, logins)
	}
	t.Logf("%d records over 6 s; %d upstream re-authentications on %d client connections", n, reauths, logins)
}
