package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

// cluster3 is a three-broker kfake cluster (node ids 0, 1, 2) with a
// 6-partition topic whose leaders span every broker.
type cluster3 struct {
	c     *kfake.Cluster
	watch *upstreamWatch
	dir   string
	ca    *tlsutil.DevCA
	files [3]string // ca, cert, key
	users string
}

func startCluster3(t *testing.T, topic string) *cluster3 {
	t.Helper()
	watch := &upstreamWatch{}
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, topic),
		kfake.ListenFn(func(n, _ string) (net.Listener, error) {
			ln, err := net.Listen(n, "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return watchListener{ln, watch}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	leaders := map[int32]bool{}
	for p := int32(0); p < 6; p++ {
		if err := c.MoveTopicPartition(topic, p, p%3); err != nil {
			t.Fatal(err)
		}
		leaders[c.LeaderFor(topic, p)] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("partition leaders on %d brokers, want 3", len(leaders))
	}
	cl := &cluster3{c: c, watch: watch, dir: t.TempDir()}
	cl.initFiles(t)
	return cl
}

// initFiles writes the CA, the proxy certificate and the users file.
func (cl *cluster3) initFiles(t *testing.T) {
	t.Helper()
	ca, err := tlsutil.NewDevCA([]string{"localhost", "127.0.0.1", "*.kafka.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cl.ca, cl.users = ca, filepath.Join(cl.dir, "users.yaml")
	cl.files[0], cl.files[1], cl.files[2], err = ca.WriteFiles(cl.dir)
	if err != nil {
		t.Fatal(err)
	}
	writeUsersFile(t, cl.users)
}

// launch runs one proxy process listening on port and forwarding to
// bootstrap; edit, when not nil, changes its configuration (see baseConfig).
func (cl *cluster3) launch(t *testing.T, name string, port int, bootstrap string, edit func(*config.Config)) *proxyEnv {
	t.Helper()
	cfg := baseConfig(port, cl.files[1], cl.files[2], cl.users, bootstrap)
	if edit != nil {
		edit(&cfg)
	}
	cfgFile := filepath.Join(cl.dir, name+".yaml")
	writeConfig(t, cfgFile, cfg)
	e := &proxyEnv{Addr: "localhost:" + strconv.Itoa(port), CAFile: cl.files[0], CAPEM: cl.ca.CAPEM,
		Upstream: bootstrap, Cluster: cl.c, Watch: cl.watch, logs: &syncBuffer{}, configDir: cl.dir,
		cfgFile: cfgFile, port: port}
	e.start(t)
	t.Cleanup(func() { e.stop(t) })
	return e
}

// routed sets the routing section.
func routed(r config.Routing) func(*config.Config) {
	return func(c *config.Config) { c.Routing = r }
}

func (cl *cluster3) upstreams() []string { return cl.c.ListenAddrs() }

// exercise produces to all six partitions and consumes them in a group,
// moves a partition's leader and produces again, and checks nothing upstream
// leaked and only the allowed addresses were dialed.
func (cl *cluster3) exercise(t *testing.T, seed string, allowed []string, topic string) {
	t.Helper()
	tlsCfg, err := tlsutil.ClientConfig(cl.ca.CAPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	produceConsumeVia(t, seed, tlsCfg, scramAuth("alice"), topic, 60, 6, rec)
	// Leader move: partition 0 goes to another broker; clients follow.
	from := cl.c.LeaderFor(topic, 0)
	if err := cl.c.MoveTopicPartition(topic, 0, (from+1)%3); err != nil {
		t.Fatal(err)
	}
	produceConsumeVia(t, seed, tlsCfg, scramAuth("bob"), topic, 30, 6, rec)
	rec.checkAgainst(t, cl.upstreams(), allowed)
}

func kcatThrough(t *testing.T, cl *cluster3, seed, topic string) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat not installed (run scripts/install-test-deps.sh)")
	}
	// kcat gets a topic of its own so its records and group stay separate.
	own := topic + "-kcat"
	if err := cl.c.CreateTopic(own, 6, nil); err != nil {
		t.Fatal(err)
	}
	e := &proxyEnv{Addr: seed, CAFile: cl.files[0]}
	runDriver(t, e, driver{name: "kcat", cmd: []string{"bash", "run.sh"}, dir: "kcat"}, "SCRAM-SHA-512", "alice", own, 30)
}

func TestRoutingSidecar(t *testing.T) {
	cl := startCluster3(t, "side")
	ups := cl.upstreams()
	var ports [3]int
	routing := config.Routing{Mode: "sidecar", Brokers: map[string]string{}}
	for i := range ports {
		ports[i] = freePort(t)
		routing.Brokers[strconv.Itoa(i)] = "localhost:" + strconv.Itoa(ports[i])
	}
	var allowed []string
	for i := range ports {
		// Each proxy forwards only to its own broker.
		cl.launch(t, "side"+strconv.Itoa(i), ports[i], ups[i], routed(routing))
		allowed = append(allowed, "localhost:"+strconv.Itoa(ports[i]))
	}
	cl.exercise(t, allowed[0], allowed, "side")
	kcatThrough(t, cl, allowed[1], "side")
}

func TestRoutingPortPerBroker(t *testing.T) {
	cl := startCluster3(t, "ppb")
	port := freePort(t)
	base := portBlock(t, 4) // nodes 0-2, and 3 added below
	routing := config.Routing{Mode: "port-per-broker", BrokerPortBase: base, AdvertisedHost: "localhost"}
	e := cl.launch(t, "ppb", port, cl.upstreams()[0], routed(routing))
	allowed := []string{e.Addr}
	for i := 0; i < 4; i++ {
		allowed = append(allowed, "localhost:"+strconv.Itoa(base+i))
	}
	cl.exercise(t, e.Addr, allowed, "ppb")
	kcatThrough(t, cl, e.Addr, "ppb")

	// A broker added later becomes reachable through its own port.
	node, _, err := cl.c.AddNode(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.c.MoveTopicPartition("ppb", 1, node); err != nil {
		t.Fatal(err)
	}
	tlsCfg, _ := tlsutil.ClientConfig(cl.ca.CAPEM, "")
	rec := &recorder{}
	produceConsumeVia(t, e.Addr, tlsCfg, scramAuth("alice"), "ppb", 30, 6, rec)
	rec.checkAgainst(t, cl.c.ListenAddrs(), allowed)
	if !strings.Contains(e.logs.String(), `"msg":"broker listener open","listener":"client","node":3`) {
		t.Fatal("no listener opened for the added broker")
	}
}

func TestRoutingSNI(t *testing.T) {
	cl := startCluster3(t, "sni")
	port := freePort(t)
	routing := config.Routing{Mode: "sni", SNIHostPattern: "b{id}.kafka.test"}
	e := cl.launch(t, "sni", port, cl.upstreams()[0], routed(routing))
	allowed := []string{e.Addr}
	for i := 0; i < 3; i++ {
		allowed = append(allowed, fmt.Sprintf("b%d.kafka.test:%d", i, port))
	}
	cl.exercise(t, e.Addr, allowed, "sni")

	// librdkafka resolves broker names itself: give them loopback
	// addresses for the duration of the test.
	if !addHosts(t, "127.0.0.1 b0.kafka.test b1.kafka.test b2.kafka.test") {
		t.Skip("/etc/hosts is not writable here; kcat over SNI needs the advertised names to resolve (CI runs as root)")
	}
	kcatThrough(t, cl, e.Addr, "sni")
}

// addHosts appends line to /etc/hosts and restores the file at cleanup.
func addHosts(t *testing.T, line string) bool {
	const path = "/etc/hosts"
	orig, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false
	}
	_, err = f.WriteString("\n" + line + " # scram-proxy test\n")
	f.Close()
	if err != nil {
		return false
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Errorf("restore %s: %v", path, err)
		}
	})
	return true
}

// TestRoutingFetchNodeEndpoints: with routing.fetch_node_endpoints the
// binary offers Fetch v16+ (KIP-951) and still leaks no upstream address
// through a leader move; by default Fetch stops at v15.
func TestRoutingFetchNodeEndpoints(t *testing.T) {
	cl := startCluster3(t, "kip951")
	port := freePort(t)
	base := portBlock(t, 6) // nodes 0-2 for each of the two proxies
	plainBase := base + 3
	plain := cl.launch(t, "kip951-off", freePort(t), cl.upstreams()[0],
		routed(config.Routing{Mode: "port-per-broker", BrokerPortBase: plainBase, AdvertisedHost: "localhost"}))
	e := cl.launch(t, "kip951", port, cl.upstreams()[0],
		routed(config.Routing{Mode: "port-per-broker", BrokerPortBase: base, AdvertisedHost: "localhost", FetchNodeEndpoints: true}))

	tlsCfg, _ := tlsutil.ClientConfig(cl.ca.CAPEM, "")
	fetchMax := func(addr string) int16 {
		c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(tlsCfg), kgo.SASL(scramAuth("alice")))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range resp.ApiKeys {
			if k.ApiKey == 1 {
				return k.MaxVersion
			}
		}
		t.Fatal("Fetch not advertised")
		return 0
	}
	if v := fetchMax(plain.Addr); v != 15 {
		t.Fatalf("default: Fetch up to v%d, want 15", v)
	}
	if v := fetchMax(e.Addr); v < 16 {
		t.Fatalf("fetch_node_endpoints: Fetch up to v%d, want 16 or more", v)
	}
	allowed := []string{e.Addr}
	for i := 0; i < 3; i++ {
		allowed = append(allowed, "localhost:"+strconv.Itoa(base+i))
	}
	cl.exercise(t, e.Addr, allowed, "kip951")
}
