package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
)

// topicConfig writes a configuration whose state topic is on the kfake
// cluster c (no TLS, no SASL upstream) and returns its path.
func topicConfig(t *testing.T, c *kfake.Cluster) string {
	t.Helper()
	f := newFixture(t)
	cfg := f.base("")
	cfg.Upstream.BootstrapServers = c.ListenAddrs()
	cfg.Upstream.TLS = config.UpstreamTLS{}
	cfg.Upstream.SASL = config.UpstreamSASL{}
	cfg.Upstream.Identities = nil
	cfg.Tokens.MasterKeyFile = ""
	keyFile := filepath.Join(t.TempDir(), "state-key")
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", statelog.KeySize)))
	if err := os.WriteFile(keyFile, []byte("s1 "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.State.Backend = "kafka"
	cfg.State.Kafka.KeyFile = keyFile
	data, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// topicEnd is the end offset of the state topic's partition: a copy that
// leaves it unchanged produced nothing.
func topicEnd(t *testing.T, c *kfake.Cluster) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, statelog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(statelog.DefaultTopic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("no end offset for the state topic: %v", o.Err)
	}
	return o.Offset
}

// TestStateCopyToTopicAndBack: a state directory copied into the state
// topic twice produces its records once; copied back out of the topic into
// a new directory, it is the same state.
func TestStateCopyToTopicAndBack(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := topicConfig(t, c)
	src := stateDir(t, "alice", "bob")

	code, out, errOut := runState(t, "copy", "--config", cfg, "--from", "dir:"+src, "--to", "kafka")
	if code != exitOK {
		t.Fatalf("copy into the topic: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"secrets: 1 copied", "users: 2 copied", "tokens: 1 copied"} {
		if !strings.Contains(out, want) {
			t.Errorf("copy into the topic says %q; want %q", out, want)
		}
	}
	end := topicEnd(t, c)
	if end != 4 {
		t.Errorf("the topic ends at offset %d after four records", end)
	}

	code, out, errOut = runState(t, "copy", "--config", cfg, "--from", "dir:"+src, "--to", "kafka")
	if code != exitOK || !strings.Contains(out, "users: 0 copied, 0 replaced, 2 unchanged") ||
		!strings.Contains(out, "tokens: 0 copied, 0 replaced, 1 unchanged") || !strings.Contains(out, "secrets: 0 copied, 0 replaced, 1 unchanged") {
		t.Fatalf("second copy into the topic: exit %d\n%s%s", code, out, errOut)
	}
	if got := topicEnd(t, c); got != end {
		t.Fatalf("the second copy produced %d records", got-end)
	}

	back := filepath.Join(t.TempDir(), "back")
	code, out, errOut = runState(t, "copy", "--config", cfg, "--from", "kafka", "--to", "dir:"+back)
	if code != exitOK {
		t.Fatalf("copy out of the topic: exit %d\n%s%s", code, out, errOut)
	}
	if got, want := stateSummary(t, back), stateSummary(t, src); got != want {
		t.Fatalf("copied through the topic, the state is\n%s\nnot\n%s", got, want)
	}
	if got := topicEnd(t, c); got != end {
		t.Fatalf("reading the topic produced %d records", got-end)
	}
}

// TestStateCopyTopicConflict: a topic whose proxies already made their own
// phantom secret conflicts with a directory's; nothing is produced unless
// --overwrite.
func TestStateCopyTopicConflict(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := topicConfig(t, c)
	code, out, errOut := runState(t, "copy", "--config", cfg, "--from", "dir:"+stateDir(t, "alice"), "--to", "kafka")
	if code != exitOK {
		t.Fatalf("first copy: exit %d\n%s%s", code, out, errOut)
	}
	end := topicEnd(t, c)
	other := stateDir(t, "carol") // another phantom secret, another token
	code, out, errOut = runState(t, "copy", "--config", cfg, "--from", "dir:"+other, "--to", "kafka", "--dry-run")
	if code != exitFailure || !strings.Contains(out, `conflict: secret "phantom_scram"`) {
		t.Fatalf("copy of another directory: exit %d\n%s%s", code, out, errOut)
	}
	if got := topicEnd(t, c); got != end {
		t.Fatalf("a refused copy produced %d records", got-end)
	}
	code, out, errOut = runState(t, "copy", "--config", cfg, "--from", "dir:"+other, "--to", "kafka", "--overwrite")
	if code != exitOK || !strings.Contains(out, "secrets: 0 copied, 1 replaced") || !strings.Contains(out, "users: 1 copied, 0 replaced, 0 unchanged") {
		t.Fatalf("copy --overwrite: exit %d\n%s%s", code, out, errOut)
	}
	if got := topicEnd(t, c); got != end+3 {
		t.Fatalf("copy --overwrite produced %d records, want 3 (secret, carol, her token)", got-end)
	}
}
