package test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// goDrivers are the matrix's Go clients, built once per test run.
var goDrivers = []string{"franz-go", "sarama", "kafka-go"}

func buildGoDrivers(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, name := range goDrivers {
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", bin, "./clients/"+name)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s driver: %v\n%s", name, err, b)
		}
		out[name] = bin
	}
	return out
}

// TestClientMatrix runs every real client through the proxy, each feature
// on a topic of its own: produce and consume in a consumer group over TLS
// with SCRAM-SHA-512 and SCRAM-SHA-256, and a franz-go delegation-token
// login. It prints a client x feature table (and writes it to MATRIX_OUT).
func TestClientMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are not run under -short")
	}
	bins := buildGoDrivers(t)
	ds := drivers()
	for _, name := range goDrivers {
		ds = append(ds, driver{name: name, cmd: []string{bins[name]}, dir: "."})
	}
	mechs := []string{"SCRAM-SHA-512", "SCRAM-SHA-256"}
	var topics []string
	for _, d := range ds {
		for _, m := range mechs {
			topics = append(topics, matrixTopic(d.name, m))
		}
	}
	topics = append(topics, "m-franz-go-token")
	e := startProxy(t, envOptions{topics: topics, config: withTokens(t)})

	results := map[string]map[string]string{}
	record := func(client, feature string, ok bool) {
		if results[client] == nil {
			results[client] = map[string]string{}
		}
		results[client][feature] = map[bool]string{true: "pass", false: "FAIL"}[ok]
	}
	for _, d := range ds {
		for _, m := range mechs {
			ok := t.Run(d.name+"/"+m, func(t *testing.T) {
				runDriver(t, e, d, m, "alice", matrixTopic(d.name, m), 20)
			})
			record(d.name, m, ok)
		}
	}
	ok := t.Run("franz-go/token", func(t *testing.T) {
		tok, err := adminFor(t, e, scramAuth("alice")).CreateDelegationToken(ctxT(t, 20*time.Second), kadm.CreateDelegationToken{})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("KAFKA_TOKEN_ID", tok.TokenID)
		t.Setenv("KAFKA_TOKEN_HMAC", base64.StdEncoding.EncodeToString(tok.HMAC))
		runDriver(t, e, driver{name: "franz-go", cmd: []string{bins["franz-go"]}, dir: "."}, "SCRAM-SHA-512", "alice", "m-franz-go-token", 20)
	})
	record("franz-go", "token login", ok)

	var b strings.Builder
	features := append(mechs, "token login")
	fmt.Fprintf(&b, "%-16s", "client")
	for _, f := range features {
		fmt.Fprintf(&b, " %-14s", f)
	}
	b.WriteString("\n")
	for _, d := range ds {
		fmt.Fprintf(&b, "%-16s", d.name)
		for _, f := range features {
			v := results[d.name][f]
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(&b, " %-14s", v)
		}
		b.WriteString("\n")
	}
	t.Logf("client matrix:\n%s", b.String())
	if out := os.Getenv("MATRIX_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func matrixTopic(client, mech string) string {
	return "m-" + client + "-" + strings.ToLower(strings.TrimPrefix(mech, "SCRAM-"))
}
