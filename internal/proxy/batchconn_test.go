package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

// recordingConn records the size of every Write and what was written.
type recordingConn struct {
	net.Conn
	writes []int
	data   bytes.Buffer
	fail   error
}

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, len(p))
	return c.data.Write(p)
}

func newBatchConn(c net.Conn) *batchConn {
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, batchSize); return &b }}
	return &batchConn{Conn: c, pool: pool}
}

func TestBatchConnPassesThroughOutsideABatch(t *testing.T) {
	rc := &recordingConn{}
	bc := newBatchConn(rc)
	for _, n := range []int{5, 100, 3} {
		if _, err := bc.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int{5, 100, 3}; !equalInts(rc.writes, want) {
		t.Fatalf("writes %v, want %v", rc.writes, want)
	}
}

func TestBatchConnGathersWritesInOrder(t *testing.T) {
	rc := &recordingConn{}
	bc := newBatchConn(rc)
	var want bytes.Buffer
	bc.begin()
	for i := 0; i < 40; i++ { // 40 "records" of 16 KiB+: more than two batches
		p := bytes.Repeat([]byte{byte(i)}, maxPlaintext+22)
		want.Write(p)
		if n, err := bc.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	big := bytes.Repeat([]byte{0xee}, batchSize+1) // larger than a batch: written as is
	want.Write(big)
	if _, err := bc.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := bc.end(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rc.data.Bytes(), want.Bytes()) {
		t.Fatal("bytes reordered or lost")
	}
	if len(rc.writes) > 5 {
		t.Fatalf("%d socket writes for %d bytes; want batches of up to %d: %v", len(rc.writes), want.Len(), batchSize, rc.writes)
	}
	for _, n := range rc.writes[:len(rc.writes)-1] {
		if n > batchSize {
			t.Fatalf("batch of %d bytes exceeds %d", n, batchSize)
		}
	}
	// After end, writes pass through again.
	rc.writes = nil
	_, _ = bc.Write([]byte("x"))
	if !equalInts(rc.writes, []int{1}) {
		t.Fatalf("after end: writes %v", rc.writes)
	}
}

func TestBatchConnReportsAFailedFlush(t *testing.T) {
	boom := errors.New("boom")
	rc := &recordingConn{fail: boom}
	bc := newBatchConn(rc)
	bc.begin()
	if _, err := bc.Write([]byte("gathered")); err != nil {
		t.Fatalf("gathered write failed early: %v", err)
	}
	if err := bc.end(); !errors.Is(err, boom) {
		t.Fatalf("end: %v, want %v", err, boom)
	}
	rc.fail = nil
	bc.begin()
	if err := bc.end(); err != nil {
		t.Fatalf("the next batch inherited the old error: %v", err)
	}
}

// TestBatchConnUnderTLS checks that a large write through crypto/tls over
// a batchConn arrives intact and in few socket writes.
func TestBatchConnUnderTLS(t *testing.T) {
	srvConf, cliConf := testTLSConfigs(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cw := &countingConn{Conn: a}
	bc := newBatchConn(cw)
	srv := tls.Server(bc, srvConf)
	cli := tls.Client(b, cliConf)

	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(payload))
		_, err := io.ReadFull(cli, buf)
		if err != nil {
			buf = nil
		}
		got <- buf
	}()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	before := cw.count()
	bc.begin()
	if _, err := srv.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := bc.end(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-got, payload) {
		t.Fatal("payload corrupted through the batch")
	}
	// 64 records of 16 KiB; batches of 16 records: 4 socket writes (5
	// allows for a short first record).
	if n := cw.count() - before; n > 5 {
		t.Fatalf("%d socket writes for 1 MiB, want at most 5", n)
	}
}

type countingConn struct {
	net.Conn
	mu sync.Mutex
	n  int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testTLSConfigs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca, err := tlsutil.NewDevCA([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	client, err = tlsutil.ClientConfig(ca.CAPEM, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, client
}
