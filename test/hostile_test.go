package test

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

// closedWithin reads until the peer closes; it fails if that takes longer
// than d or if anything is written.
func closedWithin(t *testing.T, c net.Conn, d time.Duration, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("%s: still open after %v", what, d)
	}
	if len(b) != 0 {
		t.Errorf("%s: %d bytes written before closing", what, len(b))
	}
}

// TestHostileInput throws bad input at the proxy process over the socket
// while a good client keeps producing; the proxy stays up and the good
// client's records all arrive.
func TestHostileInput(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"good"}, config: func(c *config.Config) { c.SASL.AuthTimeout = 2 * time.Second }})
	tlsCfg := e.clientTLS(t)

	// The good client produces throughout.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(tlsCfg),
		kgo.DefaultProduceTopic("good"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked, failed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Value: []byte("good-" + strconv.Itoa(i))}).FirstErr(); err != nil {
				failed++
			} else {
				acked++
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	dialTLS := func() net.Conn {
		c, err := tls.Dial("tcp", e.Addr, tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("random bytes", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			c := dialTLS()
			b := make([]byte, 64+i*37)
			_, _ = rand.Read(b)
			_, _ = c.Write(b)
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, _ = io.ReadAll(c) // closed (an ApiVersions-looking prefix may get one answer)
			c.Close()
		}
	})
	t.Run("negative and huge lengths", func(t *testing.T) {
		for _, n := range []uint32{0xffffffff, 0x80000000, 0x7fffffff, 600 << 10} {
			c := dialTLS()
			_, _ = c.Write(binary.BigEndian.AppendUint32(nil, n))
			closedWithin(t, c, 3*time.Second, fmt.Sprintf("length %#x", n))
			c.Close()
		}
	})
	t.Run("truncated frames", func(t *testing.T) {
		var f kmsg.RequestFormatter
		frame := f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1)
		for cut := 1; cut < len(frame); cut += 3 {
			c := dialTLS()
			_, _ = c.Write(frame[:cut])
			_ = c.(*tls.Conn).CloseWrite()
			closedWithin(t, c, 3*time.Second, "truncated at "+strconv.Itoa(cut))
			c.Close()
		}
	})
	t.Run("every api key before authentication", func(t *testing.T) {
		for key := int16(0); key < 100; key++ {
			req := kmsg.RequestForKey(key)
			if req == nil || key == 17 || key == 18 {
				continue
			}
			c := dialTLS()
			var f kmsg.RequestFormatter
			_, _ = c.Write(f.AppendRequest(nil, req, 1))
			closedWithin(t, c, 3*time.Second, kmsg.NameForKey(key))
			c.Close()
		}
	})
	t.Run("slowloris during authentication", func(t *testing.T) {
		c := dialTLS()
		defer c.Close()
		start := time.Now()
		var f kmsg.RequestFormatter
		frame := f.AppendRequest(nil, kmsg.NewPtrSASLHandshakeRequest(), 1)
		for _, b := range frame {
			if _, err := c.Write([]byte{b}); err != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
			if time.Since(start) > 6*time.Second {
				t.Fatal("a byte-per-half-second client outlived the 2 s auth timeout")
			}
		}
	})
	t.Run("1000 half-open connections", func(t *testing.T) {
		var conns []net.Conn
		for i := 0; i < 1000; i++ {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.port))
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		// A good login still works meanwhile.
		if err := ping(t, e, scramAuth("bob")); err != nil {
			t.Fatalf("good login among 1000 half-open connections: %v", err)
		}
		// And they are all closed by the auth timeout.
		time.Sleep(3 * time.Second)
		open := 0
		for _, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					open++
				}
			}
			c.Close()
		}
		if open > 0 {
			t.Fatalf("%d half-open connections outlived the auth timeout", open)
		}
	})

	close(stop)
	wg.Wait()
	if acked < 20 || failed > 0 {
		t.Fatalf("good client: %d acknowledged, %d failed", acked, failed)
	}
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Upstream), kgo.ConsumeTopics("good"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	got := 0
	ctx := ctxT(t, 15*time.Second)
	for got < acked && ctx.Err() == nil {
		got += direct.PollFetches(ctx).NumRecords()
	}
	if got != acked {
		t.Fatalf("upstream holds %d records, the good client had %d acknowledged", got, acked)
	}
	t.Logf("good client: %d records acknowledged and stored during the abuse", acked)
}

// TestTLSToPlaintextListener: a TLS client on a plaintext (SASL_PLAINTEXT)
// listener is closed and named in the log.
func TestTLSToPlaintextListener(t *testing.T) {
	e := startProxy(t, envOptions{config: func(c *config.Config) { c.Listener.TLS.Enabled = false }})
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.port))
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the handshake is meant to fail
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS handshake succeeded on a plaintext listener")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), "peer is speaking TLS to a plaintext listener") {
		if time.Now().After(deadline) {
			t.Fatal("no log line naming TLS on the plaintext listener")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpstreamRestartMidProduce: the upstream broker is killed and
// restarted (same port, same data directory) during a steady produce;
// clients recover and no acknowledged record is lost.
func TestUpstreamRestartMidProduce(t *testing.T) {
	dataDir := t.TempDir()
	port := freePort(t)
	startKfake := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir), kfake.SyncWrites(),
			kfake.SeedTopics(3, "restart"),
			kfake.ListenFn(func(n, _ string) (net.Listener, error) {
				return net.Listen(n, "127.0.0.1:"+strconv.Itoa(port))
			}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := startKfake()
	cl := &cluster3{c: first, watch: &upstreamWatch{}, dir: t.TempDir()}
	cl.initFiles(t)
	e := cl.launch(t, "restart", freePort(t), "127.0.0.1:"+strconv.Itoa(port), nil)
	client, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(e.clientTLS(t)),
		kgo.DefaultProduceTopic("restart"), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	acked := map[string]bool{}
	var mu sync.Mutex
	produce := func(from, to int) {
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Add(1)
			v := "r-" + strconv.Itoa(i)
			client.Produce(ctxT(t, 60*time.Second), &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					mu.Lock()
					acked[v] = true
					mu.Unlock()
				}
			})
			time.Sleep(5 * time.Millisecond)
		}
		wg.Wait()
	}
	produce(0, 100)
	first.Close()
	var second *kfake.Cluster
	done := make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		second = startKfake()
		close(done)
	}()
	produce(100, 200) // spans the outage
	<-done
	defer second.Close()
	produce(200, 250)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 150 {
		t.Fatalf("only %d of 250 records acknowledged: clients did not recover", len(acked))
	}
	direct, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(port)), kgo.ConsumeTopics("restart"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	stored := map[string]bool{}
	ctx := ctxT(t, 20*time.Second)
	for len(stored) < len(acked) && ctx.Err() == nil {
		direct.PollFetches(ctx).EachRecord(func(r *kgo.Record) { stored[string(r.Value)] = true })
	}
	for v := range acked {
		if !stored[v] {
			t.Fatalf("acknowledged record %s lost across the upstream restart (%d acked, %d stored)", v, len(acked), len(stored))
		}
	}
	t.Logf("%d of 250 records acknowledged across the restart, all stored", len(acked))
}

// TestUpstreamUnreachableAtStart: the proxy starts, says so clearly, and
// is not ready.
func TestUpstreamUnreachableAtStart(t *testing.T) {
	cl := &cluster3{watch: &upstreamWatch{}, dir: t.TempDir()}
	cl.initFiles(t)
	metrics := freePort(t)
	e := cl.launch(t, "down", freePort(t), "127.0.0.1:"+strconv.Itoa(freePort(t)),
		func(c *config.Config) { c.Metrics.Address = "127.0.0.1:" + strconv.Itoa(metrics) })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(e.logs.String(), "upstream not reachable yet") {
		if time.Now().After(deadline) {
			t.Fatal("no clear log line about the unreachable upstream")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := scrape(t, "127.0.0.1:"+strconv.Itoa(metrics), "/readyz"); code != 503 || !strings.Contains(body, "upstream") {
		t.Fatalf("readyz %d %q", code, body)
	}
}
