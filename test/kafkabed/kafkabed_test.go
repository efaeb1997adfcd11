package kafkabed

import (
	"archive/zip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestMainClassesExist: every main class this package names is in the
// pinned jars (a Kafka upgrade that moves a tool fails here first).
func TestMainClassesExist(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves the Kafka jars")
	}
	a, err := Fetch(context.Background(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	jars, _ := filepath.Glob(filepath.Join(a.Lib, "*.jar"))
	classes := map[string]bool{}
	for _, j := range jars {
		z, err := zip.OpenReader(j)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range z.File {
			classes[f.Name] = true
		}
		z.Close()
	}
	for _, m := range []string{MainBroker, MainStorage, MainTopics, MainConfigs, MainAcls, MainDelegationTokens,
		MainConsoleProducer, MainConsoleConsumer, MainConsumerGroups} {
		if !classes[strings.ReplaceAll(m, ".", "/")+".class"] {
			t.Errorf("%s is not in the Kafka %s jars", m, a.Version)
		}
	}
}

// TestClusterLogins starts one node and logs in on its SASL_SSL listener
// with both SCRAM mechanisms, is refused with a wrong password, runs a
// Kafka tool from the jars, and leaves no process behind after Stop.
func TestClusterLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker")
	}
	ctx := context.Background()
	c, err := Start(ctx, Config{Users: map[string]string{"alice": "alice-secret"}, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	defer func() {
		if t.Failed() {
			t.Log(c.LogTail(60))
		}
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAPEM)
	ping := func(m sasl.Mechanism) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap(SASLSSL)...), kgo.SASL(m), kgo.RequestRetries(0),
			kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return cl.Ping(pctx)
	}
	alice := scram.Auth{User: "alice", Pass: "alice-secret"}
	if err := ping(alice.AsSha512Mechanism()); err != nil {
		t.Errorf("SCRAM-SHA-512 login: %v", err)
	}
	if err := ping(alice.AsSha256Mechanism()); err != nil {
		t.Errorf("SCRAM-SHA-256 login: %v", err)
	}
	if err := ping(scram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism()); err == nil {
		t.Error("a wrong password logged in")
	}

	props := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(props, []byte(c.ClientProperties("alice", "SCRAM-SHA-512")), 0o600); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := c.Artifacts.Command(tctx, nil, MainTopics, "--bootstrap-server", c.Bootstrap(SASLSSL)[0],
		"--command-config", props, "--create", "--topic", "bed-check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Created topic bed-check.") {
		t.Errorf("kafka-topics --create over SASL_SSL: %v\n%s", err, out)
	}

	pids := []int{}
	for _, n := range c.Nodes {
		pids = append(pids, n.cmd.Process.Pid)
	}
	c.Stop()
	stopped = true
	for _, pid := range pids {
		if err := syscall.Kill(-pid, 0); err == nil {
			t.Errorf("process group %d still alive after Stop", pid)
		}
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s behind", c.dir)
	}
}

// TestClusterIDNeverLooksLikeAnOption: kafka-storage format parses
// "--cluster-id -abc…" as a missing argument, so an id must never start
// with '-' (one random id in 64 did, and that format failed).
func TestClusterIDNeverLooksLikeAnOption(t *testing.T) {
	for range 20000 {
		id := newClusterID()
		if len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q", id)
		}
	}
}
