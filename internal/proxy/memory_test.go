package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The bound docs/protocol.md ("Memory before authentication") states for
// an unauthenticated TLS connection that announced a frame of
// sasl.max_receive_size and sent nothing more: the proxy's heap and
// goroutine stacks, per connection.
const idleAnnouncerBound = 40 << 10

const memClientsEnv = "SCRAM_PROXY_TEST_MEM_CLIENTS"

// TestUnauthenticatedConnectionMemory opens 1,000 TLS connections to the
// proxy from a child process, each announcing a frame of
// sasl.max_receive_size after the handshake and sending nothing more, and
// checks what the proxy process holds for them: its heap in use plus its
// goroutine stacks after a GC, against the state before. The clients live
// in the child so that only the proxy's side is measured.
func TestUnauthenticatedConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 TLS handshakes")
	}
	const conns = 1000
	serverTLS, _ := testTLSConfigs(t)
	e := newEnv(t, func(o *Options) {
		o.TLS = serverTLS
		o.AuthTimeout = 10 * time.Minute
	})
	before, beforeStacks := heapAndStacks()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryClients$")
	cmd.Env = append(os.Environ(), memClientsEnv+"="+fmt.Sprintf("%s,%d,%d", e.addr, conns, e.srv.opts.MaxReceiveSize))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("clients: %q, %v", line, err)
	}
	// Every session has been accepted and is reading the announced frame.
	for i := 0; len(e.srv.sem) < conns; i++ {
		if i == 1000 {
			t.Fatalf("%d sessions open, want %d", len(e.srv.sem), conns)
		}
		time.Sleep(10 * time.Millisecond) // waits for a condition; no timing is checked
	}
	time.Sleep(time.Second) // let every session reach its read of the body
	after, afterStacks := heapAndStacks()
	held := int64(after) - int64(before)
	per := held / conns
	t.Logf("%d unauthenticated TLS connections announcing %d-byte frames hold %d KiB (%d bytes each, %d of them goroutine stack); bound %d bytes each",
		conns, e.srv.opts.MaxReceiveSize, held>>10, per, (int64(afterStacks)-int64(beforeStacks))/conns, idleAnnouncerBound)
	if per > idleAnnouncerBound {
		t.Fatalf("%d bytes per connection, over the stated bound of %d", per, idleAnnouncerBound)
	}
}

// heapAndStacks is the heap in use plus the goroutine stacks after a GC,
// and the stacks alone.
func heapAndStacks() (total, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, m.StackInuse
}

// TestMemoryClients is the child of TestUnauthenticatedConnectionMemory.
func TestMemoryClients(t *testing.T) {
	spec := os.Getenv(memClientsEnv)
	if spec == "" {
		t.Skip("run by TestUnauthenticatedConnectionMemory")
	}
	parts := strings.Split(spec, ",")
	addr := parts[0]
	n, _ := strconv.Atoi(parts[1])
	size, _ := strconv.Atoi(parts[2])
	cfg := &tls.Config{InsecureSkipVerify: true} // the test's own server on loopback
	var keep []*tls.Conn
	for range n {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, uint32(size))); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range keep {
		_ = c.Close()
	}
}
