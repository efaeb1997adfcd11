package test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestDemoWorksAsPrinted runs `scram-proxy demo` and executes the kcat
// command lines it prints, unchanged, through a shell.
func TestDemoWorksAsPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kcat")
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat not installed (run scripts/install-test-deps.sh)")
	}
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, proxyBinary, "demo", "--listen", "127.0.0.1:"+strconv.Itoa(port), "--dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("demo logs:\n%s", tail(logs.String(), 40))
		}
	}()
	var produce, consume string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && (produce == "" || consume == "") {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "printf") && strings.Contains(line, " -P "):
			produce = line
		case strings.HasPrefix(line, "kcat ") && strings.Contains(line, " -C "):
			consume = line
		}
	}
	if produce == "" || consume == "" {
		t.Fatal("demo banner lacks the kcat produce/consume lines")
	}
	if out, err := exec.CommandContext(ctx, "bash", "-c", produce).CombinedOutput(); err != nil {
		t.Fatalf("printed produce command failed: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "bash", "-c", consume+" -q").Output()
	if err != nil {
		t.Fatalf("printed consume command failed: %v", err)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	if strings.Join(got, " ") != "one three two" {
		t.Fatalf("consumed %q, want one, two, three", got)
	}
}

// TestUsersHashLineLogsIn hashes a password with the CLI and logs in with it.
func TestUsersHashLineLogsIn(t *testing.T) {
	cmd := exec.Command(proxyBinary, "users", "hash", "--name", "carol", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192")
	cmd.Stdin = strings.NewReader("carol-pass\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "carol-pass") || !strings.HasPrefix(string(out), "users:\n  carol:\n    SCRAM-SHA-512: ") {
		t.Fatalf("output %q", out)
	}
	line := strings.Trim(strings.TrimSpace(strings.SplitN(string(out), "SCRAM-SHA-512: ", 2)[1]), `"`)
	c, err := sasl.ParseStoredForm(sasl.ScramSHA512, line)
	if err != nil || c.Iterations != 8192 {
		t.Fatalf("%v %v", c, err)
	}
	want, _ := sasl.DeriveCredential(sasl.ScramSHA512, "carol-pass", c.Salt, 8192)
	if want.StoredForm() != line {
		t.Fatal("hash does not verify the password")
	}
	bad := exec.Command(proxyBinary, "users", "hash", "--name", "x", "--iterations", "100")
	bad.Stdin = strings.NewReader("p\n")
	if err := bad.Run(); err == nil {
		t.Fatal("iterations below 4096 accepted")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2", err)
	}
}

// TestBadConfigExitsTwoNamingKeys checks the process reports every bad key.
func TestBadConfigExitsTwoNamingKeys(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("listener:\n  adress: x\nsasl:\n  mechanisms: [PLAIN]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(proxyBinary, "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "listener.adress (line 2): unknown configuration key") {
		t.Fatalf("exit %v:\n%s", err, out)
	}
}

// TestUsersAddListDelete edits a credentials file offline through the CLI.
func TestUsersAddListDelete(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.yaml")
	run := func(stdin string, args ...string) string {
		cmd := exec.Command(proxyBinary, append([]string{"users"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("users %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("pw-a\n", "add", "--file", file, "--name", "alice")
	run("pw-b\n", "add", "--file", file, "--name", "bob", "--mechanism", "SCRAM-SHA-256", "--iterations", "4096")
	if out := run("", "list", "--file", file); out != "alice\tSCRAM-SHA-512 iterations=8192\nbob\tSCRAM-SHA-256 iterations=4096\n" {
		t.Fatalf("list: %q", out)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), "pw-a") {
		t.Fatal("password written to the file")
	}
	run("", "delete", "--file", file, "--name", "alice")
	if out := run("", "list", "--file", file); strings.Contains(out, "alice") {
		t.Fatalf("alice not deleted: %q", out)
	}
}
