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
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/scram-proxy/scram-proxy/test/kafkabed"
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
	// env adds variables for one run (the Java driver's client.properties).
	env func(t *testing.T, e *proxyEnv, mech, user string) []string
}

func drivers(t *testing.T) []driver {
	py := pypiPython(t)
	return []driver{
		{name: "kcat", cmd: []string{"bash", "run.sh"}, dir: "kcat", need: []string{"kcat"}},
		{name: "kafka-python", cmd: []string{"/usr/bin/python3", "run.py"}, dir: "kafka-python",
			wantLog: `"handshake_version":0`}, // Debian's 2.0.2: SaslHandshake v0 and raw tokens
		{name: "kafka-python/pypi", cmd: []string{py, "run.py"}, dir: "kafka-python"},
		{name: "confluent-kafka", cmd: []string{"/usr/bin/python3", "run.py"}, dir: "confluent-kafka"},
		{name: "confluent/pypi", cmd: []string{py, "run.py"}, dir: "confluent-kafka"},
		{name: "kafkajs", cmd: []string{"node", "run.js"}, dir: "kafkajs", need: []string{"node"}},
		javaDriver(t),
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
	if d.env != nil {
		cmd.Env = append(cmd.Env, d.env(t, e, mech, user)...)
	}
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

// pypiPython is the interpreter of the virtual environment that
// scripts/install-test-deps.sh makes with test/clients/requirements.txt
// (current kafka-python and confluent-kafka from PyPI, pinned). It records
// the requirements it was made from; a stale one fails the test.
func pypiPython(t *testing.T) string {
	t.Helper()
	cache, err := kafkabed.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	venv := filepath.Join(cache, "pyvenv")
	want, err := os.ReadFile(filepath.Join("clients", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(venv, "requirements.txt")); err != nil || string(got) != string(want) {
		t.Fatalf("no virtual environment with test/clients/requirements.txt at %s (run scripts/install-test-deps.sh)", venv)
	}
	return filepath.Join(venv, "bin", "python")
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

// matrixUpstreams are the brokers behind the proxy in the client matrix.
var matrixUpstreams = []string{"kfake", "kafka"}

// TestClientMatrix runs every real client through the proxy in front of
// kfake and in front of real Apache Kafka (test/kafkabed), each feature on
// a topic of its own: produce and consume in a consumer group over TLS
// with SCRAM-SHA-512 and SCRAM-SHA-256, delegation-token logins (franz-go,
// and the Java client with a token made by kafka-delegation-tokens), and
// Kafka's CLI tools. It prints a client x (upstream, feature) table (and
// writes it to MATRIX_OUT).
func TestClientMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are not run under -short")
	}
	bins := buildGoDrivers(t)
	ds := drivers(t)
	for _, name := range goDrivers {
		ds = append(ds, driver{name: name, cmd: []string{bins[name]}, dir: "."})
	}
	mechs := []string{"SCRAM-SHA-512", "SCRAM-SHA-256"}
	tokenClients := []string{"franz-go", "java"}

	var mu sync.Mutex
	results := map[string]map[string]string{}
	set := func(client, column, outcome string) {
		mu.Lock()
		defer mu.Unlock()
		if results[client] == nil {
			results[client] = map[string]string{}
		}
		results[client][column] = outcome
	}
	record := func(client, column string, ok bool) {
		set(client, column, map[bool]string{true: "pass", false: "FAIL"}[ok])
	}
	// The two upstreams run side by side: most of a cell is a client
	// process starting up, and the halves share nothing.
	t.Run("upstream", func(t *testing.T) {
		for _, up := range matrixUpstreams {
			t.Run(up, func(t *testing.T) {
				t.Parallel()
				var topics []string
				for _, d := range ds {
					for _, m := range mechs {
						topics = append(topics, matrixTopic(d.name, m))
					}
				}
				for _, c := range tokenClients {
					topics = append(topics, "m-"+c+"-token")
				}
				o := envOptions{topics: topics, config: withTokens(t)}
				if up == "kafka" {
					o.kafka = realKafka(t, 1)
				}
				e := startProxy(t, o)
				for _, d := range ds {
					for _, m := range mechs {
						ok := t.Run(d.name+"/"+m, func(t *testing.T) {
							runDriver(t, e, d, m, "alice", matrixTopic(d.name, m), 20)
						})
						record(d.name, up+" "+shortMech(m), ok)
					}
				}
				ok := t.Run("franz-go/token", func(t *testing.T) {
					tok, err := adminFor(t, e, scramAuth("alice")).CreateDelegationToken(ctxT(t, 20*time.Second), kadm.CreateDelegationToken{})
					if err != nil {
						t.Fatal(err)
					}
					d := driver{name: "franz-go", cmd: []string{bins["franz-go"]}, dir: ".",
						env: func(*testing.T, *proxyEnv, string, string) []string {
							return []string{"KAFKA_TOKEN_ID=" + tok.TokenID, "KAFKA_TOKEN_HMAC=" + base64.StdEncoding.EncodeToString(tok.HMAC)}
						}}
					runDriver(t, e, d, "SCRAM-SHA-512", "alice", "m-franz-go-token", 20)
				})
				record("franz-go", up+" token", ok)
				ok = t.Run("java/token", func(t *testing.T) { runJavaTokenLogin(t, e, "m-java-token") })
				record("java", up+" token", ok)
				t.Run("tools", func(t *testing.T) {
					runKafkaTools(t, e, up, func(tool, outcome string) { set(tool, up+" SHA-512", outcome) })
				})
			})
		}
	})

	var columns []string
	for _, up := range matrixUpstreams {
		columns = append(columns, up+" SHA-512", up+" SHA-256", up+" token")
	}
	var rows []string
	for _, d := range ds {
		rows = append(rows, d.name)
	}
	rows = append(rows, kafkaToolNames...)
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "client \\ upstream")
	for _, c := range columns {
		fmt.Fprintf(&b, " %-13s", c)
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-24s", r)
		for _, c := range columns {
			v := results[r][c]
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(&b, " %-13s", v)
		}
		b.WriteString("\n")
	}
	b.WriteString(matrixLegend(t))
	t.Logf("client matrix:\n%s", b.String())
	if out := os.Getenv("MATRIX_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// matrixLegend names the client versions behind the rows.
func matrixLegend(t *testing.T) string {
	py := pypiPython(t)
	version := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(out))
	}
	pyv := `import kafka, confluent_kafka as c; print("kafka-python", kafka.__version__ + ", confluent-kafka", c.__version__, "on librdkafka", c.libversion()[0])`
	return "\nkfake: franz-go's in-process fake; kafka: Apache Kafka " + kafkabed.Version() +
		" (test/kafkabed). Kafka CLI tools run with SCRAM-SHA-512 (the console consumer SHA-256).\n" +
		"kfake-bug: the tool's only failure was kfake answering with a null array where Kafka sends an empty one\n" +
		"  (CreateTopics configs, DescribeTopicPartitions eligible replicas, DescribeClientQuotas entries); see test/clients/README.md.\n" +
		"Debian Python: " + version("/usr/bin/python3", "-c", pyv) + "\n" +
		"PyPI Python (rows /pypi): " + version(py, "-c", pyv) + "\n" +
		"java and CLI tools: Apache Kafka " + kafkabed.Version() + " jars\n"
}

func shortMech(m string) string { return strings.TrimPrefix(m, "SCRAM-") }

func matrixTopic(client, mech string) string {
	return "m-" + strings.ReplaceAll(client, "/", "-") + "-" + strings.ToLower(strings.TrimPrefix(mech, "SCRAM-"))
}
