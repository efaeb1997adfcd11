package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// driver is one real client's test program (test/clients/*), run as a
// child process with the contract described in test/clients/README.md.
type driver struct {
	name string
	cmd  []string
	dir  string // working directory, relative to test/clients
	need []string
	// wantLog is a proxy log fragment the run must produce, proving the
	// client took the SASL path it is known for.
	wantLog string
}

func drivers() []driver {
	return []driver{
		{name: "kcat", cmd: []string{"bash", "run.sh"}, dir: "kcat", need: []string{"kcat"}},
		{name: "kafka-python", cmd: []string{"/usr/bin/python3", "run.py"}, dir: "kafka-python",
			wantLog: `"handshake_version":0`}, // 2.0.2: SaslHandshake v0 and raw tokens
		{name: "confluent-kafka", cmd: []string{"/usr/bin/python3", "run.py"}, dir: "confluent-kafka"},
		{name: "kafkajs", cmd: []string{"node", "run.js"}, dir: "kafkajs", need: []string{"node"}},
	}
}

var resultLine = regexp.MustCompile(`(?m)^RESULT produced=(\d+) consumed=(\d+)$`)

// runDriver runs d against e and checks its RESULT line; the client library
// being absent is a failure, not a skip: `make test` installs them.
func runDriver(t *testing.T, e *proxyEnv, d driver, mech, user, topic string, count int) {
	t.Helper()
	for _, bin := range d.need {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (run scripts/install-test-deps.sh): %v", bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cmd[0], d.cmd[1:]...)
	cmd.Dir = filepath.Join("clients", d.dir)
	cmd.Env = append(os.Environ(),
		"KAFKA_BOOTSTRAP="+e.Addr,
		"KAFKA_CA_FILE="+e.CAFile,
		"KAFKA_USER="+user,
		"KAFKA_PASSWORD="+testUsers[user],
		"KAFKA_MECHANISM="+mech,
		"KAFKA_TOPIC="+topic,
		"KAFKA_GROUP=group-"+topic,
		"KAFKA_COUNT="+strconv.Itoa(count),
		"KAFKA_TIMEOUT_SEC=60",
	)
	out, err := cmd.CombinedOutput()
	m := resultLine.FindSubmatch(out)
	if err != nil || m == nil || string(m[1]) != strconv.Itoa(count) || string(m[2]) != strconv.Itoa(count) {
		t.Fatalf("%s %s: err=%v\n%s", d.name, mech, err, tail(string(out), 40))
	}
	if d.wantLog != "" && !strings.Contains(e.logs.String(), d.wantLog) {
		t.Fatalf("%s: proxy logs lack %s", d.name, d.wantLog)
	}
	t.Logf("%s %s: %s", d.name, mech, strings.TrimSpace(string(m[0])))
}

// TestRealClients runs every real client through the proxy: produce and
// consume in a consumer group over TLS with SCRAM-SHA-512, each on its own
// 3-partition topic, against one proxy process.
func TestRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are not run under -short")
	}
	ds := drivers()
	var topics []string
	for _, d := range ds {
		topics = append(topics, "t-"+d.name)
	}
	e := startProxy(t, envOptions{topics: topics})
	for _, d := range ds {
		t.Run(d.name, func(t *testing.T) {
			runDriver(t, e, d, "SCRAM-SHA-512", "alice", "t-"+d.name, 20)
		})
	}
}
