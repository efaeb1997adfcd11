package kafkabed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

// Listener names; each is also the listener's security protocol.
const (
	// SASLSSL is TLS + SCRAM (SHA-512 and SHA-256): what clients use when
	// they talk to the brokers directly, for comparison with the proxy.
	SASLSSL = "SASL_SSL"
	// SASLPlaintext is SCRAM without TLS: the proxy's upstream, logging in
	// as its own identity (upstream.sasl).
	SASLPlaintext = "SASL_PLAINTEXT"
	// Plaintext is unauthenticated (User:ANONYMOUS, a super user): the
	// proxy's upstream without SASL, the brokers' own traffic, and the test
	// bed's readiness checks.
	Plaintext = "PLAINTEXT"
	// controller is the KRaft controller listener (PLAINTEXT).
	controller = "CONTROLLER"
)

var listeners = []string{SASLSSL, SASLPlaintext, Plaintext, controller}

// Config describes a cluster. The zero value is one node with no users.
type Config struct {
	// Nodes is the number of combined broker+controller nodes (default 1).
	Nodes int
	// Users are created at format time with SCRAM-SHA-512 and SCRAM-SHA-256
	// credentials for these passwords (4096 iterations).
	Users map[string]string
	// SuperUsers are user names with every right under the
	// StandardAuthorizer (User:ANONYMOUS always is one). Everyone else is
	// allowed where no ACL names the resource.
	SuperUsers []string
	// TokenSecretKey is delegation.token.secret.key (default
	// "kafkabed-token-secret").
	TokenSecretKey string
	// Dir holds the nodes' configuration, data and logs. Empty: a new
	// temporary directory, removed by Stop.
	Dir string
	// StartTimeout bounds Start (default 4 minutes: JVMs start slowly on a
	// loaded machine).
	StartTimeout time.Duration
	// Heap is the broker JVM's -Xmx (default "512m").
	Heap string
	// Properties are extra server.properties entries for every node; they
	// win over the test bed's own.
	Properties map[string]string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Cluster is a running KRaft cluster on loopback.
type Cluster struct {
	Artifacts *Artifacts
	Nodes     []*Node
	ClusterID string
	// CAFile (and CAPEM) is the CA that signed the SASL_SSL listeners'
	// certificate, which names localhost and 127.0.0.1.
	CAFile         string
	CAPEM          []byte
	TokenSecretKey string
	Users          map[string]string
	SuperUsers     []string

	dir    string
	ownDir bool
	cfg    Config
	log    io.Writer
}

// Node is one combined broker and controller.
type Node struct {
	ID int32
	// Addrs maps each listener name to its "127.0.0.1:port".
	Addrs map[string]string
	Dir   string
	// LogFile holds the JVM's output (log4j at INFO).
	LogFile string

	props  string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Addr is the node's address on listener.
func (n *Node) Addr(listener string) string { return n.Addrs[listener] }

// Bootstrap lists every node's address on listener.
func (c *Cluster) Bootstrap(listener string) []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr(listener))
	}
	return out
}

// Start formats and starts a cluster and returns once every node serves
// metadata naming all nodes, or fails within cfg.StartTimeout (the nodes'
// log tails are in the error). The caller must Stop it; the JVMs are also
// killed when the calling process dies.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 4 * time.Minute
	}
	if cfg.Heap == "" {
		cfg.Heap = "512m"
	}
	if cfg.TokenSecretKey == "" {
		cfg.TokenSecretKey = "kafkabed-token-secret"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	began := time.Now()
	a, err := Fetch(ctx, log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Artifacts: a, TokenSecretKey: cfg.TokenSecretKey, Users: cfg.Users,
		SuperUsers: cfg.SuperUsers, dir: cfg.Dir, cfg: cfg, log: log}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "kafkabed-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	if err := c.writeTLS(); err != nil {
		c.cleanup()
		return nil, err
	}
	// A port picked free can be taken before the JVM binds it: try again
	// on fresh ports when that is why a node died.
	for attempt := 1; ; attempt++ {
		err = c.startOnce(ctx)
		if err == nil {
			fmt.Fprintf(log, "kafkabed: Kafka %s, %d node(s) ready in %s\n", a.Version, cfg.Nodes, time.Since(began).Round(100*time.Millisecond))
			return c, nil
		}
		bind := c.bindFailed()
		c.stopNodes()
		if !bind || attempt == 3 || ctx.Err() != nil {
			c.cleanup()
			return nil, err
		}
		fmt.Fprintf(log, "kafkabed: a listener port was taken, retrying on others\n")
	}
}

func (c *Cluster) writeTLS() error {
	ca, err := tlsutil.NewDevCA([]string{"localhost", "127.0.0.1"}, 7*24*time.Hour)
	if err != nil {
		return err
	}
	tlsDir := filepath.Join(c.dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o755); err != nil {
		return err
	}
	caFile, _, _, err := ca.WriteFiles(tlsDir)
	if err != nil {
		return err
	}
	// Kafka's PEM key store: the unencrypted PKCS#8 key, then the chain.
	ks := append(append([]byte{}, ca.KeyPEM...), ca.CertPEM...)
	if err := os.WriteFile(filepath.Join(tlsDir, "keystore.pem"), ks, 0o600); err != nil {
		return err
	}
	c.CAFile, c.CAPEM = caFile, ca.CAPEM
	return nil
}

func (c *Cluster) startOnce(ctx context.Context) error {
	base, err := PortBlock(4 * c.cfg.Nodes)
	if err != nil {
		return err
	}
	c.ClusterID = newClusterID()
	c.Nodes = nil
	for i := 0; i < c.cfg.Nodes; i++ {
		n := &Node{ID: int32(i + 1), Addrs: map[string]string{},
			Dir: filepath.Join(c.dir, "node-"+strconv.Itoa(i+1))}
		for j, l := range listeners {
			n.Addrs[l] = "127.0.0.1:" + strconv.Itoa(base+4*i+j)
		}
		n.LogFile = filepath.Join(n.Dir, "server.log")
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := os.RemoveAll(n.Dir); err != nil {
			return err
		}
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return err
		}
		n.props = filepath.Join(n.Dir, "server.properties")
		if err := os.WriteFile(n.props, []byte(c.serverProperties(n)), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "log4j2.properties"), []byte(log4jConfig), 0o644); err != nil {
			return err
		}
	}
	if err := c.format(ctx); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if err := c.launch(n); err != nil {
			return err
		}
	}
	return c.awaitReady(ctx)
}

// format runs kafka-storage format on every node's directory, in parallel,
// with the SCRAM users.
func (c *Cluster) format(ctx context.Context) error {
	names := make([]string, 0, len(c.Users))
	for u := range c.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	var scram []string
	for _, u := range names {
		for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256"} {
			scram = append(scram, "--add-scram", m+"=[name="+u+",password="+c.Users[u]+"]")
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"format", "-t", c.ClusterID, "-c", n.props}, scram...)
			cmd := c.Artifacts.Command(ctx, nil, MainStorage, args...)
			cmd.Env = append(os.Environ(), "LOG_DIR="+n.Dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("kafkabed: format node %d: %w\n%s", n.ID, err, out)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) launch(n *Node) error {
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"-Xmx" + c.cfg.Heap, "-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(n.Dir, "log4j2.properties"),
		"-cp", c.Artifacts.Classpath(), MainBroker, n.props}
	cmd := exec.Command(javaBin(), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = n.Dir
	// Its own process group, killed whole by Stop; and SIGKILL when this
	// process dies (a test binary's panic or timeout), so no JVM outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	return nil
}

// awaitReady polls each node over PLAINTEXT until its metadata lists every
// node and its SASL_SSL listener accepts connections.
func (c *Cluster) awaitReady(ctx context.Context) error {
	for _, n := range c.Nodes {
		for {
			err := c.nodeReady(ctx, n)
			if err == nil {
				fmt.Fprintf(c.log, "kafkabed: node %d ready (%s)\n", n.ID, n.Addr(SASLSSL))
				break
			}
			select {
			case <-n.exited:
				return fmt.Errorf("kafkabed: node %d exited during start-up:\n%s", n.ID, c.LogTail(40))
			case <-ctx.Done():
				return fmt.Errorf("kafkabed: node %d not ready in time (%v):\n%s", n.ID, err, c.LogTail(40))
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

func (c *Cluster) nodeReady(ctx context.Context, n *Node) error {
	for _, l := range listeners {
		conn, err := net.DialTimeout("tcp", n.Addr(l), time.Second)
		if err != nil {
			return err
		}
		conn.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr(Plaintext)), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Brokers) != len(c.Nodes) {
		return fmt.Errorf("metadata lists %d of %d brokers", len(resp.Brokers), len(c.Nodes))
	}
	return nil
}

func (c *Cluster) serverProperties(n *Node) string {
	var voters []string
	for _, o := range c.Nodes {
		voters = append(voters, fmt.Sprintf("%d@%s", o.ID, o.Addr(controller)))
	}
	var lst, adv []string
	for _, l := range listeners {
		lst = append(lst, l+"://"+n.Addr(l))
		if l != controller {
			adv = append(adv, l+"://"+n.Addr(l))
		}
	}
	rf := strconv.Itoa(min(len(c.Nodes), 3))
	supers := []string{"User:ANONYMOUS"}
	for _, u := range c.SuperUsers {
		supers = append(supers, "User:"+u)
	}
	ks := filepath.Join(c.dir, "tls", "keystore.pem")
	p := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          strconv.Itoa(int(n.ID)),
		"controller.quorum.voters":                         strings.Join(voters, ","),
		"controller.listener.names":                        controller,
		"listeners":                                        strings.Join(lst, ","),
		"advertised.listeners":                             strings.Join(adv, ","),
		"listener.security.protocol.map":                   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
		"inter.broker.listener.name":                       Plaintext,
		"sasl.enabled.mechanisms":                          "SCRAM-SHA-512,SCRAM-SHA-256",
		"ssl.keystore.type":                                "PEM",
		"ssl.keystore.location":                            ks,
		"log.dirs":                                         filepath.Join(n.Dir, "data"),
		"num.partitions":                                   "3",
		"default.replication.factor":                       rf,
		"offsets.topic.replication.factor":                 rf,
		"offsets.topic.num.partitions":                     "5",
		"transaction.state.log.replication.factor":         rf,
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "5",
		"share.coordinator.state.topic.replication.factor": rf,
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
		"delegation.token.secret.key":                      c.TokenSecretKey,
		"authorizer.class.name":                            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                                      strings.Join(supers, ";"),
		"allow.everyone.if.no.acl.found":                   "true",
		"auto.create.topics.enable":                        "true",
	}
	for _, l := range []string{"sasl_ssl", "sasl_plaintext"} {
		for _, m := range []string{"scram-sha-512", "scram-sha-256"} {
			p["listener.name."+l+"."+m+".sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
		}
	}
	for k, v := range c.cfg.Properties {
		p[k] = v
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + p[k] + "\n")
	}
	return b.String()
}

// log4jConfig sends the broker's log to stdout (the node's log file),
// INFO for Kafka and WARN for the chatty state-change and request loggers.
const log4jConfig = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
`

// ClientProperties is a Java client.properties for user on the brokers'
// SASL_SSL listener (direct, without the proxy).
func (c *Cluster) ClientProperties(user, mechanism string) string {
	return strings.Join([]string{
		"bootstrap.servers=" + strings.Join(c.Bootstrap(SASLSSL), ","),
		"security.protocol=SASL_SSL",
		"sasl.mechanism=" + mechanism,
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="` + user + `" password="` + c.Users[user] + `";`,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + c.CAFile,
		"",
	}, "\n")
}

// LogTail is the last lines of every node's log, each block headed by the
// node id.
func (c *Cluster) LogTail(lines int) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		data, _ := os.ReadFile(n.LogFile)
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		fmt.Fprintf(&b, "--- kafka node %d (%s), last %d lines ---\n%s\n", n.ID, n.LogFile, len(ls), strings.Join(ls, "\n"))
	}
	return b.String()
}

func (c *Cluster) bindFailed() bool {
	for _, n := range c.Nodes {
		data, _ := os.ReadFile(n.LogFile)
		if bytes.Contains(data, []byte("Address already in use")) {
			return true
		}
	}
	return false
}

// Stop ends every node (SIGTERM to its process group, SIGKILL after 15 s)
// and removes the directory when Start made it.
func (c *Cluster) Stop() {
	c.stopNodes()
	c.cleanup()
}

func (c *Cluster) stopNodes() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop(15 * time.Second)
		}()
	}
	wg.Wait()
}

func (n *Node) stop(grace time.Duration) {
	pg := -n.cmd.Process.Pid
	_ = syscall.Kill(pg, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(grace):
		_ = syscall.Kill(pg, syscall.SIGKILL)
		<-n.exited
	}
	// Anything the JVM started is in its group too.
	_ = syscall.Kill(pg, syscall.SIGKILL)
}

func (c *Cluster) cleanup() {
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
}

// newClusterID is a random Kafka Uuid in its string form (22 characters of
// unpadded URL-safe base64).
func newClusterID() string {
	b := make([]byte, 16)
	for {
		_, _ = rand.Read(b)
		// One id in 64 would start with '-', which kafka-storage's argument
		// parser takes for an option ("--cluster-id: expected one
		// argument"); Kafka's own Uuid.randomUuid draws again for the same
		// reason.
		if id := base64.RawURLEncoding.EncodeToString(b); id[0] != '-' {
			return id
		}
	}
}

// PortBlock returns the first of n consecutive free loopback ports below
// the kernel's ephemeral range, where no outgoing connection takes them
// between this check and their listener binding them (a JVM's, or a
// port-per-broker listener opened when a broker appears).
func PortBlock(n int) (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	if low-n <= 10000 {
		return 0, fmt.Errorf("kafkabed: ephemeral ports start at %d: no room below for %d ports", low, n)
	}
	for try := 0; try < 50; try++ {
		r, err := rand.Int(rand.Reader, big.NewInt(int64(low-n-10000)))
		if err != nil {
			return 0, err
		}
		base := 10000 + int(r.Int64())
		var held []net.Listener
		for i := 0; i < n; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(held) == n {
			return base, nil
		}
	}
	return 0, fmt.Errorf("kafkabed: no block of %d free ports found", n)
}

// Dir holds the nodes' configuration, data and logs, and tls/ (ca.pem,
// server.pem, server-key.pem).
func (c *Cluster) Dir() string { return c.dir }

// proxyUsersFile is the users file of WriteProxyConfig: development
// passwords, which the proxy derives at start-up.
const proxyUsersFile = `users:
  alice:
    password: "alice-secret"
  admin:
    password: "admin-secret"
`

// WriteProxyConfig writes a scram-proxy configuration for this cluster into
// dir and returns its path: the proxy listens on listen (TLS with the test
// bed's certificate, so the same ca.pem serves both), knows the users alice
// and admin (a super user) with the passwords alice-secret and
// admin-secret, serves delegation tokens, and reaches the brokers'
// SASL_PLAINTEXT listeners as the user proxy (which the cluster must have,
// as a super user: see the kafka-testbed command). With more than one node
// it routes port-per-broker: node N is localhost:<listen port + N>.
func (c *Cluster) WriteProxyConfig(dir, listen, upstreamUser, upstreamPassword string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	usersFile := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(usersFile, []byte(proxyUsersFile), 0o600); err != nil {
		return "", err
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	tlsDir := filepath.Join(c.dir, "tls")
	routing := ""
	if len(c.Nodes) > 1 {
		routing = "routing:\n  mode: port-per-broker\n  broker_port_base: " + port + "\n  advertised_host: localhost\n"
	}
	cfg := fmt.Sprintf(`# scram-proxy in front of the kafkabed test bed (written by kafka-testbed).
listener:
  address: %s
  advertised_address: localhost:%s
  tls:
    cert_file: %s
    key_file: %s
sasl:
  mechanisms: [SCRAM-SHA-512, SCRAM-SHA-256]
credentials:
  file: %s
upstream:
  bootstrap_servers: [%s]
  sasl: {mechanism: SCRAM-SHA-512, username: %s, password: %s}
delegation_tokens:
  master_key: kafkabed-proxy-token-key
authorization:
  super_users: ["User:admin"]
state:
  dir: %s
metrics:
  address: ""
log:
  format: console
%s`, listen, port, filepath.Join(tlsDir, "server.pem"), filepath.Join(tlsDir, "server-key.pem"), usersFile,
		strings.Join(c.Bootstrap(SASLPlaintext), ", "), upstreamUser, upstreamPassword, filepath.Join(dir, "state"), routing)
	path := filepath.Join(dir, "scram-proxy.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}
