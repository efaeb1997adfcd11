package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// binary is the scram-proxy built once for the whole package by TestMain.
var proxyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scram-proxy-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	proxyBinary = filepath.Join(dir, "scram-proxy")
	build := exec.Command("go", "build", "-race", "-o", proxyBinary, "github.com/scram-proxy/scram-proxy/cmd/scram-proxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build scram-proxy:", err)
		os.Exit(1)
	}
	flag.Parse()
	prestartRealKafka()
	code := m.Run()
	stopRealKafka()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Users every integration proxy knows.
var testUsers = map[string]string{"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"}

// upstreamWatch wraps kfake's listener and flags any connection whose first
// byte starts a TLS record: only a client that learned kfake's real address
// (a leak) would speak TLS to it, since the proxy's upstream side is plaintext.
type upstreamWatch struct {
	accepted atomic.Int64
	tlsSeen  atomic.Int64
}

type watchListener struct {
	net.Listener
	w *upstreamWatch
}

func (l watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.w.accepted.Add(1)
		c = &firstByteConn{Conn: c, w: l.w}
	}
	return c, err
}

type firstByteConn struct {
	net.Conn
	w    *upstreamWatch
	once sync.Once
}

func (c *firstByteConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() {
			if b[0] == 0x16 {
				c.w.tlsSeen.Add(1)
			}
		})
	}
	return n, err
}

type proxyEnv struct {
	Addr      string // client-facing address, "localhost:port"
	CAFile    string
	CAPEM     []byte
	Upstream  string
	Cluster   *kfake.Cluster
	Watch     *upstreamWatch
	logs      *syncBuffer
	cmd       *exec.Cmd
	exited    chan struct{}
	configDir string
	cfgFile   string
	port      int
	// MetricsAddr serves /metrics, /healthz and /readyz.
	MetricsAddr string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOptions struct {
	// kfakeOpts add upstream options (TLS, SASL, ACLs); upstreamTLS says
	// the proxy's own upstream connections are TLS, so TLS records reaching
	// kfake are no longer proof of a leak.
	kfakeOpts   []kfake.Opt
	upstreamTLS bool
	topics      []string
	partitions  int32
	// kafka, when set, is the upstream instead of kfake: the proxy reaches
	// its SASL_PLAINTEXT listeners as the super user kafkaProxyUser.
	kafka *kafkabed.Cluster
	// config edits the proxy's configuration before it is written. The
	// harness has set the listener (TLS with its certificate), both SCRAM
	// mechanisms, a 100 ms failed-auth delay, the users file, the upstream
	// (and the proxy's identity at a real Kafka), debug logging and the
	// metrics address (see baseConfig).
	config func(*config.Config)
	// port, when set, is the proxy's listener port (a test that must know
	// its proxies' addresses before they start: sidecars that advertise
	// each other); 0 picks a free one.
	port int
	// tlsFrom, when set, is a proxy whose CA and certificate this one
	// serves too, so that one client trusts every proxy of a fleet.
	tlsFrom *proxyEnv
}

// baseConfig is the configuration every integration proxy starts from:
// TLS and SCRAM on port, the users of testUsers, upstream as the bootstrap
// servers, debug logs in JSON, metrics off.
func baseConfig(port int, certFile, keyFile, usersFile string, upstream ...string) config.Config {
	c := config.Defaults()
	c.Listener.Address = "127.0.0.1:" + strconv.Itoa(port)
	c.Listener.AdvertisedAddress = "localhost:" + strconv.Itoa(port)
	c.Listener.TLS.CertFile, c.Listener.TLS.KeyFile = certFile, keyFile
	c.SASL.Mechanisms = []string{"SCRAM-SHA-512", "SCRAM-SHA-256"}
	c.SASL.FailedAuthDelay = 100 * time.Millisecond
	c.Credentials.File = usersFile
	c.Upstream.BootstrapServers = upstream
	c.Log = config.Log{Level: "debug", Format: "json"}
	c.Metrics.Address = ""
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// portBlock is kafkabed.PortBlock for a test: n consecutive free loopback
// ports below the ephemeral range, so port-per-broker listeners that open
// at base+id when a broker appears are not taken meanwhile.
func portBlock(t *testing.T, n int) int {
	t.Helper()
	base, err := kafkabed.PortBlock(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// startProxy runs kfake in-process and the built proxy as a child process in
// front of it, with TLS and SCRAM, and waits until the proxy accepts.
func startProxy(t *testing.T, o envOptions) *proxyEnv {
	t.Helper()
	if o.partitions == 0 {
		o.partitions = 3
	}
	watch := &upstreamWatch{} // detached unless kfake is the upstream
	var cluster *kfake.Cluster
	var upstream []string
	if o.kafka != nil {
		upstream = o.kafka.Bootstrap(kafkabed.SASLPlaintext)
		createKafkaTopics(t, o.kafka, o.partitions, o.topics)
	} else {
		opts := []kfake.Opt{kfake.NumBrokers(1),
			kfake.ListenFn(func(n, _ string) (net.Listener, error) {
				ln, err := net.Listen(n, "127.0.0.1:0")
				if err != nil {
					return nil, err
				}
				return watchListener{ln, watch}, nil
			})}
		if len(o.topics) > 0 {
			opts = append(opts, kfake.SeedTopics(o.partitions, o.topics...))
		}
		opts = append(opts, o.kfakeOpts...)
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cluster, upstream = c, c.ListenAddrs()
	}

	dir := t.TempDir()
	ca, err := tlsutil.NewDevCA([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if f := o.tlsFrom; f != nil {
		ca.CAPEM = f.CAPEM
		if ca.CertPEM, err = os.ReadFile(filepath.Join(f.configDir, "server.pem")); err != nil {
			t.Fatal(err)
		}
		if ca.KeyPEM, err = os.ReadFile(filepath.Join(f.configDir, "server-key.pem")); err != nil {
			t.Fatal(err)
		}
	}
	caFile, certFile, keyFile, err := ca.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.yaml")
	writeUsersFile(t, usersFile)
	port, metricsPort := o.port, freePort(t)
	if port == 0 {
		port = freePort(t)
	}
	cfg := baseConfig(port, certFile, keyFile, usersFile, upstream...)
	cfg.Metrics.Address = "127.0.0.1:" + strconv.Itoa(metricsPort)
	if o.kafka != nil {
		cfg.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: kafkaProxyUser, Password: kafkaProxyPassword}
	}
	if o.config != nil {
		o.config(&cfg)
	}
	cfgFile := filepath.Join(dir, "scram-proxy.yaml")
	writeConfig(t, cfgFile, cfg)
	if o.upstreamTLS {
		watch = &upstreamWatch{} // detached: TLS upstream connections are the proxy's own
	}
	e := &proxyEnv{
		Addr: "localhost:" + strconv.Itoa(port), CAFile: caFile, CAPEM: ca.CAPEM,
		Upstream: upstream[0], Cluster: cluster, Watch: watch,
		logs: &syncBuffer{}, configDir: dir, cfgFile: cfgFile, port: port,
		MetricsAddr: "127.0.0.1:" + strconv.Itoa(metricsPort),
	}
	e.start(t)
	t.Cleanup(func() { e.stop(t) })
	return e
}

// start runs the proxy process and waits until it accepts connections.
func (e *proxyEnv) start(t *testing.T) {
	t.Helper()
	e.launch(t)
	e.waitListening(t)
}

// launch runs the proxy process and returns at once.
func (e *proxyEnv) launch(t *testing.T) {
	t.Helper()
	e.exited = make(chan struct{})
	e.cmd = exec.Command(proxyBinary, "--config", e.cfgFile)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	e.cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := e.exited
	cmd := e.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
}

// waitListening waits until the launched proxy accepts connections.
func (e *proxyEnv) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(e.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-e.exited:
			t.Fatalf("proxy exited at start:\n%s", e.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy did not listen:\n%s", e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart stops the proxy with SIGINT and starts it again on the same
// configuration, state directory and upstream.
func (e *proxyEnv) restart(t *testing.T) {
	t.Helper()
	e.interrupt(t)
	e.start(t)
}

// interrupt stops the proxy with SIGINT and waits until it has exited.
func (e *proxyEnv) interrupt(t *testing.T) {
	t.Helper()
	_ = e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.exited:
	case <-time.After(40 * time.Second):
		t.Fatal("proxy did not stop on SIGINT")
	}
}

// stop sends SIGTERM and waits; a race report or a crash fails the test.
func (e *proxyEnv) stop(t *testing.T) {
	select {
	case <-e.exited:
	default:
		_ = e.cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.exited:
		case <-time.After(40 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.exited
			t.Errorf("proxy did not stop on SIGINT")
		}
	}
	logs := e.logs.String()
	if strings.Contains(logs, "WARNING: DATA RACE") || strings.Contains(logs, "panic:") {
		t.Errorf("proxy reported a race or panic:\n%s", logs)
	}
	if t.Failed() {
		t.Logf("proxy logs:\n%s", tail(logs, 60))
	}
	if n := e.Watch.tlsSeen.Load(); n > 0 {
		t.Errorf("%d client connection(s) reached the upstream directly: an upstream address leaked", n)
	}
}

// writeConfig writes c where the proxy process reads it (config.Marshal).
func writeConfig(t *testing.T, path string, c config.Config) {
	t.Helper()
	b, err := config.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writeUsersFile(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for user, pw := range testUsers {
		b.WriteString("  " + user + ":\n")
		for _, m := range sasl.Mechanisms() {
			c, err := sasl.DeriveCredential(m, pw, []byte("integration-salt-"+user), 4096)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("    " + string(m) + ": \"" + c.StoredForm() + "\"\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *proxyEnv) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	c, err := tlsutil.ClientConfig(e.CAPEM, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upstreamEndpoint is the byte pattern of the upstream's host followed by
// its port as an int32: how a broker endpoint looks inside any response
// (STRING or COMPACT_STRING host, then INT32 port).
func (e *proxyEnv) upstreamEndpoint(t *testing.T) []byte { return endpointPattern(t, e.Upstream) }

func endpointPattern(t *testing.T, hostport string) []byte {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return binary.BigEndian.AppendUint32([]byte(host), uint32(port))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
