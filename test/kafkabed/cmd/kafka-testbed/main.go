// Command kafka-testbed starts the real-Kafka test bed (see package
// kafkabed) in the foreground, prints its listeners, users and a matching
// scram-proxy command, and stops it on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

func main() {
	nodes := flag.Int("nodes", 1, "number of combined broker+controller nodes")
	dir := flag.String("dir", "", "directory for configuration, data and logs (default: a temporary one, removed at exit)")
	listen := flag.String("proxy-listen", "127.0.0.1:9096", "listener address of the scram-proxy configuration this writes")
	fetch := flag.Bool("fetch-only", false, "only resolve the Kafka jars into the cache, print their directory and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *fetch {
		a, err := kafkabed.Fetch(ctx, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("Kafka %s jars: %s\n", a.Version, a.Lib)
		return
	}
	users := map[string]string{"admin": "admin-secret", "alice": "alice-secret", "proxy": "proxy-secret"}
	c, err := kafkabed.Start(ctx, kafkabed.Config{Nodes: *nodes, Users: users,
		SuperUsers: []string{"admin", "proxy"}, Dir: *dir, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Stop()
	proxyCfg, err := c.WriteProxyConfig(filepath.Join(c.Dir(), "proxy"), *listen, "proxy", "proxy-secret")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		c.Stop()
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Join(c.Dir(), "proxy", "client.properties"), []byte(clientProperties(*listen, c.CAFile)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		c.Stop()
		os.Exit(1)
	}
	fmt.Print(banner(c, proxyCfg, *listen))
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping Kafka")
}

func banner(c *kafkabed.Cluster, proxyCfg, listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Apache Kafka %s test bed is running (%d node(s), cluster id %s).\n\n", c.Artifacts.Version, len(c.Nodes), c.ClusterID)
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "  node %d: SASL_SSL %s  SASL_PLAINTEXT %s  PLAINTEXT %s\n          log %s\n",
			n.ID, n.Addr(kafkabed.SASLSSL), n.Addr(kafkabed.SASLPlaintext), n.Addr(kafkabed.Plaintext), n.LogFile)
	}
	fmt.Fprintf(&b, "\n  SCRAM users (SHA-512 and SHA-256): admin/admin-secret and proxy/proxy-secret (super users), alice/alice-secret\n")
	fmt.Fprintf(&b, "  CA of the SASL_SSL listeners (and of the proxy below): %s\n", c.CAFile)
	fmt.Fprintf(&b, "  delegation.token.secret.key: %s\n\n", c.TokenSecretKey)
	up := strings.Join(c.Bootstrap(kafkabed.SASLPlaintext), ",")
	fmt.Fprintf(&b, "Run scram-proxy in front of it (TLS on %s, users alice and admin, tokens on;\nupstream: the SASL_PLAINTEXT listeners, as the user proxy), in another terminal:\n\n", listen)
	fmt.Fprintf(&b, "  go run ./cmd/scram-proxy --config %s\n\n", proxyCfg)
	fmt.Fprintf(&b, "or point any proxy configuration at it (the password from the environment: secrets are never flags):\n\n  SCRAM_PROXY_UPSTREAM_SASL_PASSWORD=proxy-secret scram-proxy --config ... \\\n  --upstream.bootstrap_servers=%s --upstream.sasl.mechanism=SCRAM-SHA-512 --upstream.sasl.username=proxy\n\n", up)
	fmt.Fprintf(&b, "Java client.properties for alice through the proxy (written to %s):\n\n%s\n",
		filepath.Join(filepath.Dir(proxyCfg), "client.properties"), indent(clientProperties(listen, c.CAFile)))
	fmt.Fprintf(&b, "Java client.properties for alice directly to the brokers (SASL_SSL):\n\n%s\nPress Ctrl-C to stop.\n", indent(c.ClientProperties("alice", "SCRAM-SHA-512")))
	return b.String()
}

// clientProperties is a Java client.properties for alice through the proxy.
func clientProperties(listen, caFile string) string {
	_, port, _ := net.SplitHostPort(listen)
	return strings.Join([]string{
		"bootstrap.servers=localhost:" + port,
		"security.protocol=SASL_SSL",
		"sasl.mechanism=SCRAM-SHA-512",
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";`,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + caFile,
		"",
	}, "\n")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}
