package test

// The fleet harness: three proxies in sidecar mode, one per broker, that
// share their tokens, admin-API users and phantom secret through a state
// topic on the cluster they front (state.backend: kafka).

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// fleetSize is the number of brokers, and of proxies in front of them.
const fleetSize = 3

// stateFleet is fleetSize proxies in sidecar mode, proxy i forwarding to
// broker i only, with one state topic.
type stateFleet struct {
	proxies []*proxyEnv
	// Topic is the state topic (unique per fleet: a real cluster is shared
	// by the whole test run).
	Topic string
	// direct are the brokers' addresses for a client that bypasses the
	// proxies (kfake's listeners, or Kafka's PLAINTEXT ones).
	direct []string
	// nodeIDs are the brokers' node ids, proxy i's broker first.
	nodeIDs []int32
}

// stateFleetOptions: kafka, when set, is the cluster (else a three-broker
// kfake).
type stateFleetOptions struct {
	kafka *kafkabed.Cluster
}

// startStateFleet starts the cluster (kfake) and the proxies, one after the
// other, and waits until each is ready (/readyz).
func startStateFleet(t *testing.T, o stateFleetOptions) *stateFleet {
	t.Helper()
	f := &stateFleet{Topic: fmt.Sprintf("__scram_proxy_state_%d", time.Now().UnixNano()%1e9)}
	var upstreams []string // proxy i's own broker
	watch := &upstreamWatch{}
	var cluster *kfake.Cluster
	if o.kafka != nil {
		for _, n := range o.kafka.Nodes {
			upstreams = append(upstreams, n.Addr(kafkabed.SASLPlaintext))
			f.direct = append(f.direct, n.Addr(kafkabed.Plaintext))
			f.nodeIDs = append(f.nodeIDs, n.ID)
		}
		if len(upstreams) != fleetSize {
			t.Fatalf("the real cluster has %d nodes, want %d", len(upstreams), fleetSize)
		}
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(fleetSize),
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
		cluster = c
		upstreams, f.direct = c.ListenAddrs(), c.ListenAddrs()
		for i := range upstreams {
			f.nodeIDs = append(f.nodeIDs, int32(i))
		}
	}

	dir := t.TempDir()
	ca, err := tlsutil.NewDevCA([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile, err := ca.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.yaml")
	writeUsersFile(t, usersFile)
	stateKey := filepath.Join(dir, "state.key")
	writeStateKey(t, stateKey)

	ports := make([]int, fleetSize)
	routing := config.Routing{Mode: "sidecar", Brokers: map[string]string{}}
	for i := range ports {
		ports[i] = freePort(t)
		routing.Brokers[strconv.Itoa(int(f.nodeIDs[i]))] = "localhost:" + strconv.Itoa(ports[i])
	}
	for i := range fleetSize {
		metricsPort := freePort(t)
		cfg := baseConfig(ports[i], certFile, keyFile, usersFile, upstreams[i])
		cfg.Metrics.Address = "127.0.0.1:" + strconv.Itoa(metricsPort)
		cfg.Routing = routing
		// Logins are polled while state propagates: no growing throttle
		// between failed attempts, and a short delay after each.
		cfg.SASL.FailedAuthDelay, cfg.SASL.MaxFailedAuthDelay = 20*time.Millisecond, 0
		cfg.Tokens.MasterKey = "fleet-master-key"
		cfg.Authz.SuperUsers = []string{"User:admin"}
		cfg.State = config.State{Backend: "kafka", Kafka: config.StateKafka{Topic: f.Topic, KeyFile: stateKey,
			ReplicationFactor: fleetSize, MinInsyncReplicas: 2}}
		if o.kafka != nil {
			cfg.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: kafkaProxyUser, Password: kafkaProxyPassword}
		}
		cfgFile := filepath.Join(dir, "proxy"+strconv.Itoa(i)+".yaml")
		writeConfig(t, cfgFile, cfg)
		e := &proxyEnv{Addr: "localhost:" + strconv.Itoa(ports[i]), CAFile: caFile, CAPEM: ca.CAPEM,
			Upstream: upstreams[i], Cluster: cluster, Watch: watch, logs: &syncBuffer{}, configDir: dir,
			cfgFile: cfgFile, port: ports[i], MetricsAddr: cfg.Metrics.Address}
		e.start(t)
		t.Cleanup(func() { e.stop(t) })
		f.proxies = append(f.proxies, e)
	}
	// /readyz also waits for the upstream check.
	deadline := time.Now().Add(30 * time.Second)
	for i, e := range f.proxies {
		for code := e.readyz(t); code != http.StatusOK; code = e.readyz(t) {
			if time.Now().After(deadline) {
				t.Fatalf("proxy %d not ready 30 s after its start: /readyz says %d", i, code)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return f
}

// writeStateKey writes a state.kafka.key_file: one AES-256 key, "<id> <base64>".
func writeStateKey(t *testing.T, path string) {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("fleet-1 "+base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readyz is the status of the proxy's /readyz, 0 when it does not answer.
func (e *proxyEnv) readyz(t *testing.T) int {
	t.Helper()
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + e.MetricsAddr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metrics scrapes the proxy's /metrics.
func (e *proxyEnv) metrics(t *testing.T) string {
	t.Helper()
	code, body := scrape(t, e.MetricsAddr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return body
}

// directClient is a franz-go client straight to the brokers, bypassing the
// proxies (kfake; Kafka's PLAINTEXT listeners, User:ANONYMOUS, a super user).
func (f *stateFleet) directClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(f.direct...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// stateRecords reads the state topic from the brokers directly, from its
// start up to the end offsets it has now.
func (f *stateFleet) stateRecords(t *testing.T) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	ends, err := kadm.NewClient(f.directClient(t)).ListEndOffsets(ctx, f.Topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", f.Topic, err, ends.Error())
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl := f.directClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.Topic: startOffsets(want)}))
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (missing up to %v)", f.Topic, err, want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s: %v", f.Topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				out = append(out, r)
				if r.Offset == end-1 {
					delete(want, r.Partition)
				}
			}
		})
	}
	return out
}

func startOffsets(parts map[int32]int64) map[int32]kgo.Offset {
	m := map[int32]kgo.Offset{}
	for p := range parts {
		m[p] = kgo.NewOffset().AtStart()
	}
	return m
}

// pollLogin logs in through e with mech (saslLogin), a new connection each
// time, until logins succeed (wantOK) or fail, or until deadline after t0.
// It returns the time from t0 to the end of the first attempt with the
// wanted outcome: a bound on how long the change made at t0 took to reach e.
func pollLogin(e *proxyEnv, tlsCfg *tls.Config, mech sasl.Mechanism, t0 time.Time, wantOK bool, deadline time.Duration) (time.Duration, error) {
	var last error
	for time.Since(t0) < deadline {
		if last = loginMatches(saslLogin(e.Addr, tlsCfg, mech), wantOK); last == nil {
			return time.Since(t0), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("not within %v: %w", deadline, last)
}

// saslLogin logs in through the proxy at addr with franz-go's SCRAM client
// over TLS, SaslHandshake v1 and SaslAuthenticate v1 by hand, and stops
// there: a login costs no upstream connection, so polling measures the
// state, not the brokers. A refused login is the Kafka error
// (kerr.SaslAuthenticationFailed); no answer is an I/O error.
func saslLogin(addr string, tlsCfg *tls.Config, mech sasl.Mechanism) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: tlsCfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	corr := int32(0)
	roundTrip := func(req kmsg.Request) (kmsg.Response, error) {
		corr++
		if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("fleet-test")).AppendRequest(nil, req, corr)); err != nil {
			return nil, err
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return nil, err
		}
		b := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		if len(b) < 4 || int32(binary.BigEndian.Uint32(b)) != corr {
			return nil, errors.New("response out of order")
		}
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		return resp, resp.ReadFrom(b[4:]) // v1 responses: a header of the correlation id only
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech.Name()
	r, err := roundTrip(hs)
	if err != nil {
		return err
	}
	if code := r.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
		return kerr.ErrorForCode(code)
	}
	session, msg, err := mech.Authenticate(ctx, addr)
	if err != nil {
		return err
	}
	for {
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SetVersion(1)
		auth.SASLAuthBytes = msg
		r, err := roundTrip(auth)
		if err != nil {
			return err
		}
		ar := r.(*kmsg.SASLAuthenticateResponse)
		if ar.ErrorCode != 0 {
			return kerr.ErrorForCode(ar.ErrorCode)
		}
		done, next, err := session.Challenge(ar.SASLAuthBytes)
		if err != nil || done {
			return err
		}
		msg = next
	}
}

// kgoLogin is a new franz-go client logging in through e and sending one
// request (Metadata), as an application would; a failed login is its error.
func kgoLogin(t *testing.T, e *proxyEnv, mech sasl.Mechanism) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(mech), kgo.DialTLSConfig(e.clientTLS(t)),
		kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// clientVia is a franz-go client as user whose every connection goes to
// proxy e, whatever broker it means: in sidecar mode Metadata names every
// proxy, and a request may otherwise go to any of them.
func clientVia(t *testing.T, e *proxyEnv, user string) *kgo.Client {
	t.Helper()
	cfg := e.clientTLS(t)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := tls.Dialer{Config: cfg}
		return d.DialContext(ctx, network, e.Addr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth(user)), kgo.Dialer(dial), kgo.RequestRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// adminVia is a kadm client on clientVia.
func adminVia(t *testing.T, e *proxyEnv, user string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(clientVia(t, e, user))
}
