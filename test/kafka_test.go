package test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// The proxy's own identity at the real brokers: a super user, on their
// SASL_PLAINTEXT listeners.
const (
	kafkaProxyUser     = "proxy"
	kafkaProxyPassword = "proxy-secret"
)

// kafkaBeds are the real-Kafka clusters of this test binary, one per node
// count, started on first use (or by prestartRealKafka) and shared by
// every test; TestMain stops them.
var kafkaBeds = struct {
	mu     sync.Mutex
	m      map[int]*kafkaBed
	ctx    context.Context
	cancel context.CancelFunc
}{m: map[int]*kafkaBed{}}

type kafkaBed struct {
	ready chan struct{} // closed once Start returned
	c     *kafkabed.Cluster
	err   error
}

// kafkaBedFor returns the cluster of nodes nodes, starting it in the
// background if nothing has yet.
func kafkaBedFor(nodes int) *kafkaBed {
	kafkaBeds.mu.Lock()
	defer kafkaBeds.mu.Unlock()
	if kafkaBeds.ctx == nil {
		kafkaBeds.ctx, kafkaBeds.cancel = context.WithCancel(context.Background())
	}
	b := kafkaBeds.m[nodes]
	if b == nil {
		b = &kafkaBed{ready: make(chan struct{})}
		kafkaBeds.m[nodes] = b
		users := maps.Clone(testUsers)
		users[kafkaProxyUser] = kafkaProxyPassword
		ctx := kafkaBeds.ctx
		go func() {
			defer close(b.ready)
			b.c, b.err = kafkabed.Start(ctx, kafkabed.Config{Nodes: nodes, Users: users,
				SuperUsers: []string{"admin", kafkaProxyUser}, Log: os.Stderr,
				Properties: map[string]string{"connection.failed.authentication.delay.ms": strconv.FormatInt(kafkaFailedAuthDelay.Milliseconds(), 10)}})
		}()
	}
	return b
}

// prestartRealKafka starts the one- and three-node clusters in the
// background when the whole package runs (no -run filter, not -short), so
// their start-up overlaps the tests that do not need them.
func prestartRealKafka() {
	if testing.Short() {
		return
	}
	if f := flag.Lookup("test.run"); f == nil || f.Value.String() != "" {
		return
	}
	go func() {
		<-kafkaBedFor(1).ready
		kafkaBedFor(3)
	}()
}

// realKafka returns the shared real Kafka cluster of nodes nodes (1 or 3),
// starting it on first use: the users of testUsers plus "proxy", with
// admin and proxy super users. A cluster that cannot start fails the test
// (`make test` installs Java and Maven's artifacts); only -short skips.
// When the test fails, the brokers' log tails are logged.
func realKafka(t *testing.T, nodes int) *kafkabed.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("real Kafka is not started under -short")
	}
	b := kafkaBedFor(nodes)
	<-b.ready
	if b.err != nil {
		t.Fatalf("real Kafka test bed (%d node(s)) did not start: %v", nodes, b.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("real Kafka logs:\n%s", b.c.LogTail(60))
		}
	})
	return b.c
}

// stopRealKafka stops every cluster realKafka or prestartRealKafka started
// (cancelling a start still under way), and removes the compiled Java
// driver.
func stopRealKafka() {
	removeJavaBuild()
	kafkaBeds.mu.Lock()
	defer kafkaBeds.mu.Unlock()
	if kafkaBeds.cancel != nil {
		kafkaBeds.cancel()
	}
	for n, b := range kafkaBeds.m {
		<-b.ready
		if b.c != nil {
			b.c.Stop()
		}
		delete(kafkaBeds.m, n)
	}
}

// kafkaAdmin is a kadm client on the cluster's PLAINTEXT listeners
// (User:ANONYMOUS, a super user), bypassing the proxy.
func kafkaAdmin(t *testing.T, c *kafkabed.Cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap(kafkabed.Plaintext)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createKafkaTopics creates topics on the real cluster (directly), each
// with partitions partitions; topics that exist already are fine.
func createKafkaTopics(t *testing.T, c *kafkabed.Cluster, partitions int32, topics []string) {
	t.Helper()
	if len(topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := kafkaAdmin(t, c).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		t.Fatalf("create topics on Kafka: %v", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			t.Fatalf("create topic %s on Kafka: %v", r.Topic, r.Err)
		}
	}
}

// uniqueTopic names a topic for this run: the shared cluster outlives tests.
func uniqueTopic(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e9)
}

// TestRealKafkaProduceConsume: franz-go produces and consumes through the
// proxy in front of real Kafka, and no upstream address reaches it.
func TestRealKafkaProduceConsume(t *testing.T) {
	k := realKafka(t, 1)
	topic := uniqueTopic(t, "rk")
	e := startProxy(t, envOptions{kafka: k, topics: []string{topic}})
	rec := &recorder{}
	produceConsume(t, e, scramAuth("alice"), topic, 20, rec)
	rec.checkAgainst(t, append(k.Bootstrap(kafkabed.SASLPlaintext), k.Bootstrap(kafkabed.SASLSSL)...), []string{e.Addr})
}

// TestKafkaTestbedProxyConfig: the proxy configuration the kafka-testbed
// command writes for people (README) serves alice in front of the cluster:
// sidecar-style for one node, port-per-broker (node N on the listener's
// port + N) for three.
func TestKafkaTestbedProxyConfig(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(strconv.Itoa(nodes)+"-node", func(t *testing.T) {
			k := realKafka(t, nodes)
			port := portBlock(t, nodes+1) // the listener, then one port per node id
			cfgFile, err := k.WriteProxyConfig(t.TempDir(), "127.0.0.1:"+strconv.Itoa(port), kafkaProxyUser, kafkaProxyPassword)
			if err != nil {
				t.Fatal(err)
			}
			e := &proxyEnv{Addr: "localhost:" + strconv.Itoa(port), CAFile: k.CAFile, CAPEM: k.CAPEM,
				Upstream: k.Bootstrap(kafkabed.SASLPlaintext)[0], Watch: &upstreamWatch{}, logs: &syncBuffer{},
				cfgFile: cfgFile, port: port}
			e.start(t)
			t.Cleanup(func() { e.stop(t) })
			topic := uniqueTopic(t, "bedcfg")
			createKafkaTopics(t, k, 3, []string{topic})
			allowed := []string{e.Addr}
			if nodes > 1 {
				for id := 1; id <= nodes; id++ {
					allowed = append(allowed, "localhost:"+strconv.Itoa(port+id))
				}
			}
			rec := &recorder{}
			produceConsume(t, e, scramAuth("alice"), topic, 10, rec)
			rec.checkAgainst(t, k.Bootstrap(kafkabed.SASLPlaintext), allowed)
		})
	}
}

// TestRealKafkaThreeBrokers: one proxy routes port-per-broker in front of
// the three-node cluster; franz-go produces to and consumes from partitions
// led by every node through the brokers' own proxy ports, and no broker
// address reaches it.
func TestRealKafkaThreeBrokers(t *testing.T) {
	k := realKafka(t, 3)
	topic := uniqueTopic(t, "rk3")
	base := portBlock(t, 4) // node ids 1-3 listen at base+id
	e := startProxy(t, envOptions{kafka: k, topics: []string{topic}, partitions: 6,
		config: func(c *config.Config) {
			c.Routing = config.Routing{Mode: "port-per-broker", BrokerPortBase: base, AdvertisedHost: "localhost"}
		}})
	allowed := []string{e.Addr}
	for id := 1; id <= 3; id++ {
		allowed = append(allowed, "localhost:"+strconv.Itoa(base+id))
	}
	rec := &recorder{}
	produceConsumeVia(t, e.Addr, e.clientTLS(t), scramAuth("alice"), topic, 60, 6, rec)
	var brokers []string
	for _, l := range []string{kafkabed.SASLSSL, kafkabed.SASLPlaintext, kafkabed.Plaintext} {
		brokers = append(brokers, k.Bootstrap(l)...)
	}
	rec.checkAgainst(t, brokers, allowed)
	rec.mu.Lock()
	dialed := len(rec.dialed)
	rec.mu.Unlock()
	if dialed != 4 {
		t.Fatalf("client dialed %d proxy addresses, want the bootstrap and all three broker ports: %v", dialed, rec.dialed)
	}
}
