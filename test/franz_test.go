package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// recorder keeps every decrypted byte the client read, and every address it
// dialed, so a test can prove no upstream endpoint ever reached the client.
type recorder struct {
	mu     sync.Mutex
	read   bytes.Buffer
	dialed map[string]int
}

func (r *recorder) dialer(cfg *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		r.mu.Lock()
		if r.dialed == nil {
			r.dialed = map[string]int{}
		}
		r.dialed[host]++
		r.mu.Unlock()
		// Names under .kafka.test (SNI routing tests) resolve to loopback;
		// the TLS server name stays the name the proxy advertised.
		name, port, _ := net.SplitHostPort(host)
		addr := host
		if strings.HasSuffix(name, ".kafka.test") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		c.ServerName = name
		tc := tls.Client(raw, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return &recordingConn{Conn: tc, r: r}, nil
	}
}

type recordingConn struct {
	net.Conn
	r *recorder
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.r.mu.Lock()
	c.r.read.Write(b[:n])
	c.r.mu.Unlock()
	return n, err
}

func (r *recorder) check(t *testing.T, e *proxyEnv) {
	t.Helper()
	r.checkAgainst(t, []string{e.Upstream}, []string{e.Addr})
}

// checkAgainst fails if any response carried one of the upstream endpoints,
// or the client dialed anything but the allowed proxy addresses.
func (r *recorder) checkAgainst(t *testing.T, upstreams, allowed []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read.Len() == 0 {
		t.Fatal("recorder saw no response bytes")
	}
	for _, u := range upstreams {
		if bytes.Contains(r.read.Bytes(), endpointPattern(t, u)) {
			t.Errorf("a response carried the upstream endpoint %s", u)
		}
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for host := range r.dialed {
		if !ok[host] {
			t.Errorf("client dialed %s, not one of the proxy addresses %v", host, allowed)
		}
	}
}

// produceConsume produces n records to topic and reads them back in a
// consumer group, returning how many distinct produced values came back.
func produceConsume(t *testing.T, e *proxyEnv, mech sasl.Mechanism, topic string, n int, rec *recorder) {
	t.Helper()
	produceConsumeVia(t, e.Addr, e.clientTLS(t), mech, topic, n, 3, rec)
}

// produceConsumeVia produces n records round-robin over wantPartitions
// partitions through seed and reads them back in a consumer group.
func produceConsumeVia(t *testing.T, seed string, tlsCfg *tls.Config, mech sasl.Mechanism, topic string, n, wantPartitions int, rec *recorder) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	base := []kgo.Opt{
		kgo.SeedBrokers(seed),
		kgo.SASL(mech),
		kgo.Dialer(rec.dialer(tlsCfg)),
		kgo.RequestRetries(10),
	}
	prod, err := kgo.NewClient(append(base, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := map[string]bool{}
	var records []*kgo.Record
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("franz-%s-%d", topic, i)
		want[v] = true
		records = append(records, &kgo.Record{Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	partitions := map[int32]bool{}
	for _, r := range records {
		partitions[r.Partition] = true
	}
	if len(partitions) != wantPartitions {
		t.Fatalf("records landed on %d partitions, want %d", len(partitions), wantPartitions)
	}

	cons, err := kgo.NewClient(append(base, kgo.ConsumerGroup("g-"+topic), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]bool{}
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want[string(r.Value)] {
				got[string(r.Value)] = true
			}
		})
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func TestFranzGoSCRAMSHA512(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"franz512"}})
	rec := &recorder{}
	produceConsume(t, e, scram.Auth{User: "alice", Pass: testUsers["alice"]}.AsSha512Mechanism(), "franz512", 60, rec)
	rec.check(t, e)
}

func TestFranzGoSCRAMSHA256(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"franz256"}})
	rec := &recorder{}
	produceConsume(t, e, scram.Auth{User: "bob", Pass: testUsers["bob"]}.AsSha256Mechanism(), "franz256", 30, rec)
	rec.check(t, e)
}

func TestFranzGoWrongPasswordFails(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"nope"}})
	rec := &recorder{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr),
		kgo.SASL(scram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism()),
		kgo.Dialer(rec.dialer(e.clientTLS(t))), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = cl.Ping(ctxT(t, 10*time.Second))
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}

func scramAuth(user string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: testUsers[user]}.AsSha512Mechanism()
}
