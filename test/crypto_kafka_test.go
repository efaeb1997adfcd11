package test

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// TestRealKafkaTokenHMAC checks the proxy's token crypto against Kafka's:
// for delegation tokens the real broker creates under its secret key K,
// dtoken.HMAC(K, token id) is the HMAC the broker handed out (and that HMAC
// logs in to the broker); and a proxy whose master key is K hands out
// exactly dtoken.HMAC(K, id) for its own tokens.
func TestRealKafkaTokenHMAC(t *testing.T) {
	k := realKafka(t, 1)
	brokerTLS, err := tlsutil.ClientConfig(k.CAPEM, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	direct := func(m func() kgo.Opt) *kadm.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Bootstrap(kafkabed.SASLSSL)...), kgo.DialTLSConfig(brokerTLS),
			kgo.RequestRetries(2), m())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	alice := direct(func() kgo.Opt { return kgo.SASL(scramAuth("alice")) })
	for i := 0; i < 3; i++ {
		tok, err := alice.CreateDelegationToken(ctxT(t, 30*time.Second), kadm.CreateDelegationToken{})
		if err != nil {
			t.Fatalf("CreateDelegationToken at the broker: %v", err)
		}
		if got := dtoken.HMAC(k.TokenSecretKey, tok.TokenID); !bytes.Equal(got, tok.HMAC) {
			t.Fatalf("token %s: dtoken.HMAC under the broker's key is %x, the broker's HMAC %x", tok.TokenID, got, tok.HMAC)
		}
		if other := dtoken.HMAC(k.TokenSecretKey+"x", tok.TokenID); bytes.Equal(other, tok.HMAC) {
			t.Fatal("the HMAC does not depend on the key")
		}
		if i == 0 {
			// The token is a real one: it logs in at the broker.
			waitTokenLogin(t, k.Bootstrap(kafkabed.SASLSSL)[0], brokerTLS, tok)
		}
	}

	e := startProxy(t, envOptions{kafka: k, config: func(c *config.Config) {
		withTokens(t)(c)
		c.Tokens.MasterKey = k.TokenSecretKey
	}})
	tok, err := adminFor(t, e, scramAuth("alice")).CreateDelegationToken(ctxT(t, 30*time.Second), kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("CreateDelegationToken at the proxy: %v", err)
	}
	if got := dtoken.HMAC(k.TokenSecretKey, tok.TokenID); !bytes.Equal(got, tok.HMAC) {
		t.Fatalf("the proxy's token %s has HMAC %x, Kafka's formula under the same key gives %x", tok.TokenID, tok.HMAC, got)
	}
	if err := ping(t, e, tokenMech(tok)); err != nil {
		t.Fatalf("the proxy's token does not log in at the proxy: %v", err)
	}
}

// waitTokenLogin waits up to 20 s for tok to log in at addr: a broker
// learns a new token from the controller's metadata a moment after
// creating it.
func waitTokenLogin(t *testing.T, addr string, tlsCfg *tls.Config, tok kadm.DelegationToken) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var cl *kgo.Client
		cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(tlsCfg), kgo.SASL(tokenMech(tok)), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Ping(ctxT(t, 10*time.Second))
		cl.Close()
		if err == nil {
			return
		}
	}
	t.Fatalf("token %s does not log in at %s: %v", tok.TokenID, addr, err)
}

// TestRealKafkaScramFromKafkaConfigs: SCRAM credentials written through the
// proxy by Kafka's own kafka-configs (which salts and hashes the password
// in Java, at 4096 and 8192 iterations)
// log in through the proxy with Kafka's own Java SCRAM client (the
// AdminClient of kafka-topics), for both mechanisms, and a wrong password
// does not. The proxy runs in front of real Kafka.
func TestRealKafkaScramFromKafkaConfigs(t *testing.T) {
	k := realKafka(t, 1)
	e := startProxy(t, envOptions{kafka: k, config: func(c *config.Config) {
		withTokens(t)(c) // a state directory and admin as a super user
	}})
	const user, password = "dave-kc", "dave-secret-9"
	brokerAdmin := filepath.Join(t.TempDir(), "broker-admin.properties")
	if err := os.WriteFile(brokerAdmin, []byte(k.ClientProperties("admin", "SCRAM-SHA-512")), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := writeClientProperties(t, e, "SCRAM-SHA-512", "admin", "", "")
	at := map[string][]string{
		"broker": {"--bootstrap-server", k.Bootstrap(kafkabed.SASLSSL)[0], "--command-config", brokerAdmin},
		"proxy":  {"--bootstrap-server", e.Addr, "--command-config", admin},
	}
	configs := func(where string, addConfig string) (string, error) {
		return kafkaTool(t, "", kafkabed.MainConfigs, append(append([]string{}, at[where]...),
			"--alter", "--entity-type", "users", "--entity-name", user, "--add-config", addConfig)...)
	}
	parallel := func(fs ...func()) {
		var wg sync.WaitGroup
		for _, f := range fs {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
		wg.Wait()
	}

	// Both mechanisms in one request: Kafka refuses a user named twice in
	// one AlterUserScramCredentials, and so does the proxy, in Kafka's words.
	both := "SCRAM-SHA-256=[iterations=4096,password=" + password + "],SCRAM-SHA-512=[iterations=8192,password=" + password + "]"
	const dup = "DuplicateResourceException: A user credential cannot be altered twice in the same request"
	var outs [2]string
	var errs [2]error
	parallel(func() { outs[0], errs[0] = configs("broker", both) }, func() { outs[1], errs[1] = configs("proxy", both) })
	for i, where := range []string{"broker", "proxy"} {
		if errs[i] == nil || !strings.Contains(outs[i], dup) {
			t.Fatalf("kafka-configs with both mechanisms at the %s: want %q, got %v\n%s", where, dup, errs[i], tail(outs[i], 20))
		}
	}

	// One mechanism per request, through the proxy.
	parallel(func() { outs[0], errs[0] = configs("proxy", "SCRAM-SHA-256=[iterations=4096,password="+password+"]") },
		func() { outs[1], errs[1] = configs("proxy", "SCRAM-SHA-512=[iterations=8192,password="+password+"]") })
	for i := range outs {
		if errs[i] != nil || !strings.Contains(outs[i], "Completed updating config for user "+user) {
			t.Fatalf("kafka-configs --alter through the proxy: %v\n%s", errs[i], tail(outs[i], 20))
		}
	}
	mechs := []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}
	parallel(func() {
		outs[0], errs[0] = kafkaTool(t, "", kafkabed.MainTopics, "--bootstrap-server", e.Addr,
			"--command-config", userProperties(t, admin, mechs[0], user, password), "--list")
	},
		func() {
			outs[1], errs[1] = kafkaTool(t, "", kafkabed.MainTopics, "--bootstrap-server", e.Addr,
				"--command-config", userProperties(t, admin, mechs[1], user, password), "--list")
		})
	for i, mech := range mechs {
		if errs[i] != nil || strings.Contains(outs[i], "rror") {
			t.Fatalf("kafka-topics --list as %s with %s: %v\n%s", user, mech, errs[i], tail(outs[i], 20))
		}
		if !strings.Contains(e.logs.String(), `"principal":"User:`+user+`","mechanism":"`+mech+`"`) {
			t.Fatalf("the proxy logged no %s login of %s", mech, user)
		}
	}
	// franz-go, an independent client, agrees; a wrong password fails.
	if err := ping(t, e, scram.Auth{User: user, Pass: password}.AsSha256Mechanism()); err != nil {
		t.Fatalf("franz-go SCRAM-SHA-256 login: %v", err)
	}
	if err := ping(t, e, scram.Auth{User: user, Pass: password + "x"}.AsSha512Mechanism()); err == nil {
		t.Fatal("a wrong password logged in")
	}
}

// userProperties derives from the admin client.properties file one that
// logs in as user with password and mech.
func userProperties(t *testing.T, adminProps, mech, user, password string) string {
	t.Helper()
	b, err := os.ReadFile(adminProps)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "sasl.jaas.config="):
			l = `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="` + user +
				`" password="` + password + `";`
		case strings.HasPrefix(l, "sasl.mechanism="):
			l = "sasl.mechanism=" + mech
		}
		lines = append(lines, l)
	}
	p := filepath.Join(t.TempDir(), "user.properties")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
