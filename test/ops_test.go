package test

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

func scrape(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue sums the samples of name whose labels contain every want.
func metricValue(body, name string, want ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if f := strings.Fields(line); ok && len(f) == 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			sum += v
		}
	}
	return sum
}

func TestMetricsAndHealth(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"met"}})
	if code, body := scrape(t, e.MetricsAddr, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := scrape(t, e.MetricsAddr, "/readyz"); code != 200 {
		t.Fatalf("readyz %d %q", code, body)
	}
	_, before := scrape(t, e.MetricsAddr, "/metrics")
	rec := &recorder{}
	produceConsume(t, e, scramAuth("alice"), "met", 10, rec)
	_ = ping(t, e, scram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism())
	_, after := scrape(t, e.MetricsAddr, "/metrics")
	for _, c := range []struct {
		name string
		lbl  []string
	}{
		{"scram_proxy_logins_total", []string{`outcome="success"`, `mechanism="SCRAM-SHA-512"`}},
		{"scram_proxy_logins_total", []string{`outcome="failure"`}},
		{"scram_proxy_connections_total", nil},
		{"scram_proxy_bytes_total", []string{`direction="from_client"`}},
		{"scram_proxy_bytes_total", []string{`direction="to_client"`}},
		{"scram_proxy_request_duration_seconds_count", []string{`api="Produce"`}},
		{"scram_proxy_credential_reloads_total", []string{`outcome="ok"`}},
	} {
		if b, a := metricValue(before, c.name, c.lbl...), metricValue(after, c.name, c.lbl...); a <= b && !(c.name == "scram_proxy_credential_reloads_total" && a > 0) {
			t.Errorf("%s%v did not move: %v -> %v", c.name, c.lbl, b, a)
		}
	}
	if strings.Contains(after, "alice") {
		t.Fatal("a user name appears in the metrics")
	}
}

// TestSIGTERMDrain: SIGTERM during a steady produce; every acknowledged
// record is in the upstream and the proxy exits within its bound.
func TestSIGTERMDrain(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"drain"}, config: func(c *config.Config) { c.Shutdown.Timeout = 10 * time.Second }})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(e.clientTLS(t)),
		kgo.DefaultProduceTopic("drain"), kgo.RequestRetries(0), kgo.RecordRetries(0), kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	acked := map[string]bool{}
	var sent atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			v := fmt.Sprintf("drain-%d", i)
			sent.Add(1)
			cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[string(r.Value)] = true
					mu.Unlock()
				}
			})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	_ = e.cmd.Process.Signal(os.Interrupt) // the process handles SIGINT and SIGTERM alike
	select {
	case <-e.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not exit within its 10 s shutdown bound")
	}
	took := time.Since(start)
	cancel()
	wg.Wait()
	cl.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d records acknowledged before SIGTERM", len(acked))
	}
	// Read everything the upstream holds, directly (plaintext, no proxy).
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Upstream), kgo.ConsumeTopics("drain"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	stored := map[string]bool{}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	for len(stored) < len(acked) && rctx.Err() == nil {
		direct.PollFetches(rctx).EachRecord(func(r *kgo.Record) { stored[string(r.Value)] = true })
	}
	missing := 0
	for v := range acked {
		if !stored[v] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged records are not in the upstream", missing, len(acked))
	}
	t.Logf("sent %d, acknowledged %d, all stored; exited %v after SIGTERM", sent.Load(), len(acked), took.Round(time.Millisecond))
	if !strings.Contains(e.logs.String(), `"msg":"stopped"`) {
		t.Fatal("no clean stop logged")
	}
}

func TestCheckConfigCommand(t *testing.T) {
	e := startProxy(t, envOptions{})
	out, err := exec.Command(proxyBinary, "check-config", "--config", e.cfgFile).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "configuration OK") {
		t.Fatalf("%v: %s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("listener:\n  tls: {cert_file: /nope.pem, key_file: /nope.key}\n  advertised_address: a:1\ncredentials: {file: /nope.yaml}\nupstream: {bootstrap_servers: [x:1]}\nlog: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(proxyBinary, "check-config", "--config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "log.level") {
		t.Fatalf("%v: %s", err, out)
	}
}

// TestDockerfile checks the image rules (multi-stage, static, distroless or
// scratch, nonroot, ports, config path) and runs the build stage's build
// command here, since no Docker engine is available.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatal("not a multi-stage build")
	}
	final := froms[len(froms)-1][1]
	if !strings.Contains(final, "distroless") && final != "scratch" {
		t.Fatalf("final stage %s is neither distroless nor scratch", final)
	}
	// The user by number (distroless's nonroot is 65532): Kubernetes
	// verifies runAsNonRoot only for a numeric user.
	for _, want := range []string{"USER 65532:65532", "EXPOSE 9096 9404", "/etc/scram-proxy/scram-proxy.yaml"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 .*go build .*)$`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no CGO_ENABLED=0 go build step")
	}
	out := filepath.Join(t.TempDir(), "out")
	script := strings.ReplaceAll(build[1], "/out/", out+"/")
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stage command failed: %v\n%s", err, b)
	}
	f, err := elf.Open(filepath.Join(out, "scram-proxy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked")
		}
	}
}
