package test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// fleet is the compose example run on loopback: three real Kafka brokers
// started by the example's start.sh from its server.properties, and three
// proxies from its scram-proxy.yaml. Only what cannot be the same on one
// host changes: the ports, the bind address (127.0.0.1) and the host
// names; every other line is the example's.
type fleet struct {
	dir     string   // the example's copy, with secrets and client settings
	proxies []string // proxy N's client address
	configs []string // proxy N's configuration file
	caPool  *x509.CertPool
}

// startFleet starts the compose example's brokers and proxies; they are
// stopped when the test ends.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("real Kafka is not started under -short")
	}
	ctx := ctxT(t, 5*time.Minute)
	art, err := kafkabed.Fetch(ctx, io.Discard)
	if err != nil {
		t.Fatalf("Kafka artifacts: %v", err)
	}
	f := &fleet{dir: copyExample(t, "compose", "localhost")}
	const nodes = 3
	base, err := kafkabed.PortBlock(nodes * 5) // per node: 3 broker listeners, the proxy, its metrics
	if err != nil {
		t.Fatal(err)
	}
	port := func(node, i int) string { return strconv.Itoa(base + 5*node + i) }

	// Stand-ins for Kafka's bin/ scripts: the same main classes over the
	// test bed's jars.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	java := "java"
	if h := os.Getenv("JAVA_HOME"); h != "" {
		java = filepath.Join(h, "bin", "java")
	}
	for name, main := range map[string]string{
		"kafka-storage.sh":      strings.Join(kafkabed.ToolJVM(), " ") + " -cp '" + art.Classpath() + "' " + kafkabed.MainStorage,
		"kafka-server-start.sh": "-Xmx384m -Xms128m -XX:+UseSerialGC -cp '" + art.Classpath() + "' " + kafkabed.MainBroker,
	} {
		script := "#!/bin/bash\nexec " + java + " " + main + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(home, "bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	props, err := os.ReadFile(filepath.Join(f.dir, "broker", "server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(f.dir, "broker", "start.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var voters []string
	for n := 0; n < nodes; n++ {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%s", n, port(n, 1)))
	}
	for n := 0; n < nodes; n++ {
		nd := filepath.Join(t.TempDir(), "kafka-"+strconv.Itoa(n))
		if err := os.MkdirAll(filepath.Join(nd, "broker"), 0o755); err != nil {
			t.Fatal(err)
		}
		p := strings.NewReplacer(":9092", ":"+port(n, 0), ":9093", ":"+port(n, 1), ":9094", ":"+port(n, 2)).Replace(string(props))
		p = strings.ReplaceAll(p, "0.0.0.0:", "127.0.0.1:")
		if strings.Contains(p, ":909") {
			t.Fatalf("a port of server.properties was not moved:\n%s", p)
		}
		if err := os.WriteFile(filepath.Join(nd, "broker", "server.properties"), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(nd, "broker", "start.sh"), script, 0o755); err != nil {
			t.Fatal(err)
		}
		logFile := filepath.Join(nd, "broker.log")
		startProcess(t, logFile, []string{"KAFKA_HOME=" + home, "SECRETS_DIR=" + filepath.Join(f.dir, "secrets"),
			"DATA_DIR=" + filepath.Join(nd, "data"), "NODE_ID=" + strconv.Itoa(n), "NODE_HOST=127.0.0.1",
			"CONTROLLER_QUORUM_VOTERS=" + strings.Join(voters, ","), "LOG_DIR=" + nd},
			"bash", filepath.Join(nd, "broker", "start.sh"))
	}

	brokers := map[string]any{}
	for n := 0; n < nodes; n++ {
		brokers[strconv.Itoa(n)] = "localhost:" + port(n, 3)
	}
	for n := 0; n < nodes; n++ {
		cfg := rewriteProxyConfig(t, filepath.Join(f.dir, "scram-proxy.yaml"),
			mounts{"/run/secrets": filepath.Join(f.dir, "secrets"), "/var/lib/scram-proxy": t.TempDir()},
			func(c map[string]any) {
				up := c["upstream"].(map[string]any)
				up["bootstrap_servers"] = []string{"127.0.0.1:" + port(n, 0)}
				r := c["routing"].(map[string]any)
				delete(r, "advertised_address_template")
				r["brokers"] = brokers
				c["listener"].(map[string]any)["address"] = "127.0.0.1:" + port(n, 3)
				c["metrics"].(map[string]any)["address"] = "127.0.0.1:" + port(n, 4)
				c["log"].(map[string]any)["format"] = "console"
			})
		f.proxies = append(f.proxies, "localhost:"+port(n, 3))
		f.configs = append(f.configs, cfg)
		startProcess(t, filepath.Join(filepath.Dir(cfg), "proxy.log"), nil, proxyBinary, "--config", cfg)
	}
	ca, err := os.ReadFile(filepath.Join(f.dir, "secrets", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	f.caPool = x509.NewCertPool()
	f.caPool.AppendCertsFromPEM(ca)
	// Ready: every proxy reaches its broker (its /readyz).
	for n := 0; n < nodes; n++ {
		url := "http://127.0.0.1:" + port(n, 4) + "/readyz"
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("proxy %d not ready: %v", n, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return f
}

// startProcess runs a command in its own process group, output to
// logFile, killed (the whole group) when the test ends; the log's tail is
// printed when the test failed.
func startProcess(t *testing.T, logFile string, env []string, name string, args ...string) {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s %s:\n%s", name, logFile, tail(string(b), 30))
		}
	})
}

// client is a franz-go client through proxy n of user (password from the
// example's client/ directory), or ("") of the kgo.SASL in opts.
func (f *fleet) client(t *testing.T, user string, n int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := f.newClient(t, user, n, opts...)
	t.Cleanup(cl.Close)
	return cl
}

// newClient is client without closing it when the test ends.
func (f *fleet) newClient(t *testing.T, user string, n int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var auth []kgo.Opt
	if user != "" {
		pw, err := os.ReadFile(filepath.Join(f.dir, "client", user+"-password"))
		if err != nil {
			t.Fatal(err)
		}
		auth = append(auth, kgo.SASL(scram.Auth{User: user, Pass: strings.TrimSpace(string(pw))}.AsSha512Mechanism()))
	}
	tlsCfg := &tls.Config{RootCAs: f.caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	cl, err := kgo.NewClient(append(append(auth, kgo.SeedBrokers(f.proxies[n]),
		kgo.Dialer((&tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tlsCfg}).DialContext),
		kgo.RecordDeliveryTimeout(60*time.Second)), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestDeployFleetOnRealKafka runs the compose example's brokers and
// proxies: admin creates a topic and alice's ACLs through proxy 1; alice
// produces through proxy 0 and consumes in a group through proxy 2, as
// herself: a topic she has no ACL for refuses her. A user admin creates
// through proxy 1 logs in through proxy 2 (the state topic), and so does a
// user of a single proxy's state.dir moved into the topic with state copy;
// a token alice
// creates through proxy 0 logs in through proxies 1 and 2 until she
// expires it through proxy 2 (the brokers' tokens).
func TestDeployFleetOnRealKafka(t *testing.T) {
	f := startFleet(t)
	ctx := ctxT(t, 3*time.Minute)
	adm := kadm.NewClient(f.client(t, "admin", 1))
	for _, topic := range []string{"fleet", "not-alices"} {
		if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
			t.Fatalf("admin creates %s through proxy 1: %v", topic, err)
		}
	}
	acl := kadm.NewACLs().Allow("User:alice").Topics("fleet").Groups("g").
		Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)
	res, err := adm.CreateACLs(ctx, acl)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("admin creates alice's ACLs: %v", r.Err)
		}
	}

	producer := f.client(t, "alice", 0)
	var records []*kgo.Record
	for i := 0; i < 3; i++ {
		records = append(records, &kgo.Record{Topic: "fleet", Value: []byte("m" + strconv.Itoa(i))})
	}
	// Her ACLs reach the broker she writes to within a moment.
	for {
		err := producer.ProduceSync(ctx, records...).FirstErr()
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.TopicAuthorizationFailed) || ctx.Err() != nil {
			t.Fatalf("alice produces through proxy 0: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	consumer := f.client(t, "alice", 2, kgo.ConsumeTopics("fleet"), kgo.ConsumerGroup("g"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < len(records) {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("alice consumes through proxy 2: %v", err)
		}
		got += fs.NumRecords()
	}
	consumer.LeaveGroup()

	err = producer.ProduceSync(ctx, &kgo.Record{Topic: "not-alices", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces to a topic she has no ACL for: %v, want TOPIC_AUTHORIZATION_FAILED (she acts as herself)", err)
	}

	// Users created through the admin API are in the state topic
	// (state.backend kafka): one admin creates through proxy 0 logs in
	// through proxy 2.
	up, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512,
		Iterations: 8192, Password: "carol-password"}})
	if err == nil {
		err = up.Error()
	}
	if err != nil {
		t.Fatalf("admin creates carol through proxy 1: %v", err)
	}
	for {
		carol := f.newClient(t, "", 2, kgo.SASL(scram.Auth{User: "carol", Pass: "carol-password"}.AsSha512Mechanism()))
		_, err := kadm.NewClient(carol).Metadata(ctx)
		carol.Close()
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.SaslAuthenticationFailed) || ctx.Err() != nil {
			t.Fatalf("carol, created through proxy 1, logs in through proxy 2: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // proxy 2 reads her record a moment later
	}

	// A single proxy's state.dir moves into the fleet's topic with state
	// copy (here while the fleet runs: the proxies' own phantom secret is
	// replaced); dave, a user only that directory had, then logs in
	// through every proxy, and copying again produces nothing.
	single := filepath.Join(t.TempDir(), "state")
	db, err := state.Open(single, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dave, err := sasl.DeriveCredential(sasl.ScramSHA512, "dave-password", []byte("dave-salt-0123456789"), 8192)
	if err == nil {
		err = db.PutUser("dave", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: dave})
	}
	if err == nil {
		_, err = db.Secret("phantom_scram")
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	copyState := func(args ...string) string {
		out, err := exec.Command(proxyBinary, append([]string{"state", "copy", "--config", f.configs[0],
			"--from", "dir:" + single, "--to", "kafka"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("state copy %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := copyState("--overwrite"); !strings.Contains(out, "users: 1 copied") || !strings.Contains(out, "secrets: 0 copied, 1 replaced") {
		t.Fatalf("state copy into the fleet's topic:\n%s", out)
	}
	if out := copyState(); !strings.Contains(out, "users: 0 copied, 0 replaced, 1 unchanged") || !strings.Contains(out, "secrets: 0 copied, 0 replaced, 1 unchanged") {
		t.Fatalf("state copy again:\n%s", out)
	}
	for n := range f.proxies {
		for {
			cl := f.newClient(t, "", n, kgo.SASL(scram.Auth{User: "dave", Pass: "dave-password"}.AsSha512Mechanism()))
			_, err := kadm.NewClient(cl).Metadata(ctx)
			cl.Close()
			if err == nil {
				break
			}
			if !errors.Is(err, kerr.SaslAuthenticationFailed) || ctx.Err() != nil {
				t.Fatalf("dave, copied into the topic, logs in through proxy %d: %v", n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Tokens are the brokers' (delegation_tokens.store broker): one alice
	// creates through proxy 0 logs in through proxies 1 and 2 and acts as
	// alice; expired through proxy 2, it logs in through none.
	tok, err := kadm.NewClient(producer).CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("alice creates a token through proxy 0: %v", err)
	}
	tokenClient := func(n int) *kgo.Client {
		return f.newClient(t, "", n, kgo.SASL(scram.Auth{User: tok.TokenID,
			Pass: base64.StdEncoding.EncodeToString(tok.HMAC), IsToken: true}.AsSha512Mechanism()))
	}
	for _, n := range []int{1, 2} {
		// The brokers learn a new token from the controller a moment later.
		for {
			cl := tokenClient(n)
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fleet", Value: []byte("by token")}).FirstErr()
			cl.Close()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("alice's token through proxy %d: %v", n, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		cl := tokenClient(n)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "not-alices", Value: []byte("x")}).FirstErr()
		cl.Close()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("alice's token through proxy %d writes where alice may not: %v", n, err)
		}
	}
	if _, err := kadm.NewClient(f.client(t, "alice", 2)).ExpireDelegationToken(ctx, tok.HMAC, -time.Millisecond); err != nil {
		t.Fatalf("alice expires her token through proxy 2: %v", err)
	}
	for n := range f.proxies {
		for {
			cl := tokenClient(n)
			_, err := kadm.NewClient(cl).Metadata(ctx) // a login, then one request
			cl.Close()
			if err != nil {
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("the expired token at proxy %d: %v, want SASL_AUTHENTICATION_FAILED", n, err)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the expired token still logs in at proxy %d", n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
