// Command bench measures scram-proxy against a direct connection in one run
// on one machine: produce and consume throughput, produce latency at half
// load, SCRAM logins per second and per proxy CPU second, memory per idle
// authenticated connection, and proxy CPU seconds per GiB moved. The
// upstream is franz-go's kfake with BlackholeProduce and SyntheticFetch so
// the broker is not the bottleneck. Run it with `make bench`.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
)

const (
	user, pass = "bench", "bench-secret"
	topic      = "bench"
)

var (
	dur        = flag.Duration("duration", 5*time.Second, "length of each throughput and latency phase")
	idle       = flag.Int("idle", 10000, "idle authenticated connections for the memory measurement")
	logins     = flag.Int("logins", 2000, "SCRAM logins for the login-rate measurement")
	out        = flag.String("out", "bin/bench.txt", "where to write the table")
	binPath    = flag.String("proxy", "", "scram-proxy binary (built when empty)")
	rounds     = flag.Int("rounds", 3, "interleaved direct/proxy rounds per throughput phase (the median is reported)")
	phases     = flag.String("phases", "produce-100,produce-1000,consume,latency,logins,idle,kafka-produce,kafka-consume,kafka-principal,state", "which phases to run, comma-separated")
	relay      = flag.String("relay", "", "internal: run as the bare TLS relay, forwarding to this address")
	relayFiles = flag.String("relay-files", "", "internal: the relay's listen address, cert and key files, comma-separated")
	profDir    = flag.String("profile", "", "write the proxy's pprof profiles here: CPU during each proxy phase, heap with the idle connections open")
)

type target struct {
	name  string
	addr  string
	tls   *tls.Config
	pid   int    // the relay or proxy process, 0 for direct
	debug string // the proxy's metrics and profiling address (/debug/pprof)
	// pinned: every connection goes to addr whatever the metadata says
	// (the bare relay cannot rewrite broker addresses).
	pinned bool
}

// pprof fetches the proxy's named pprof profile (query: its parameters).
func (t target) pprof(name, query string) ([]byte, error) {
	if t.debug == "" {
		return nil, fmt.Errorf("%s has no pprof endpoint", t.name)
	}
	resp, err := http.Get("http://" + t.debug + "/debug/pprof/" + name + "?" + query)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, err
}

// profile saves the proxy's named pprof profile under -profile; it is a
// no-op without -profile or for the other targets.
func (t target) profile(name, query, file string) {
	if *profDir == "" || t.debug == "" {
		return
	}
	b, err := t.pprof(name, query)
	if err == nil {
		err = os.WriteFile(filepath.Join(*profDir, file), b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
	}
}

// cpuProfile profiles the proxy for the phase duration in the background
// (in the first round only); wait for it with the returned func.
func (t target) cpuProfile(file string, round int) func() {
	if round > 0 {
		return func() {}
	}
	return t.cpuProfileFor(file, *dur)
}

// cpuProfileFor profiles the proxy for d (whole seconds, at least one) in
// the background; wait for it with the returned func. Like profile, it
// does nothing without -profile.
func (t target) cpuProfileFor(file string, d time.Duration) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.profile("profile", fmt.Sprintf("seconds=%d", max(1, int(math.Round(d.Seconds())))), file)
	}()
	return func() { <-done }
}

func main() {
	flag.Parse()
	run := run
	if *relay != "" {
		run = runRelay
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "scram-proxy-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca, err := tlsutil.NewDevCA([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		return err
	}
	_, certFile, keyFile, err := ca.WriteFiles(dir)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	clientTLS, _ := tlsutil.ClientConfig(ca.CAPEM, "localhost")
	fast := []kfake.Opt{kfake.NumBrokers(1), kfake.BlackholeProduce(),
		kfake.SyntheticFetch(kfake.SyntheticBatch{RecordBytes: 1000, RandomFrac: 1}), kfake.SeedTopics(1, topic),
		kfake.ListenFn(func(n, _ string) (net.Listener, error) { return net.Listen(n, "127.0.0.1:0") })}
	direct, err := kfake.NewCluster(append(fast, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))...)
	if err != nil {
		return err
	}
	defer direct.Close()
	behind, err := kfake.NewCluster(fast...)
	if err != nil {
		return err
	}
	defer behind.Close()
	// The floor: a bare TLS-terminating relay (io.Copy both ways, its own
	// process) in front of a plaintext kfake that does SCRAM itself. What
	// it loses against direct is what any separate TLS-terminating process
	// costs on this machine; what the proxy loses against it is the
	// proxy's own overhead.
	bare, err := kfake.NewCluster(append(fast, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))...)
	if err != nil {
		return err
	}
	defer bare.Close()

	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			return err
		}
	}
	proxyAddr, debugAddr, pid, stop, err := startProxy(dir, certFile, keyFile, behind.ListenAddrs()[0], nil)
	if err != nil {
		return err
	}
	defer stop()
	relayAddr, relayPid, stopRelay, err := startRelay(certFile, keyFile, bare.ListenAddrs()[0])
	if err != nil {
		return err
	}
	defer stopRelay()
	d := target{name: "direct", addr: strings.Replace(direct.ListenAddrs()[0], "127.0.0.1", "localhost", 1), tls: clientTLS}
	r := target{name: "relay", addr: relayAddr, tls: clientTLS, pid: relayPid, pinned: true}
	p := target{name: "proxy", addr: proxyAddr, tls: clientTLS, pid: pid, debug: debugAddr}

	var rows []row
	add := func(metric, unit string, dv, rv, pv float64) {
		rows = append(rows, row{metric + " (" + unit + ")", dv, rv, pv, true})
	}
	note := func(metric string, pv float64) { rows = append(rows, row{metric, 0, 0, pv, false}) }
	var busy []row              // CPU use per phase, printed after the ratios
	var proxyCPU, moved float64 // proxy CPU seconds and GiB over the throughput phases
	halfRate := 0.0             // half the direct 1000 B produce rate
	phase := func(name string, run func(target) sample) (dm, rm, pm sample) {
		var dr, rr, pr throughput
		for i := 0; i < *rounds; i++ { // interleaved, so drift hits every target alike
			dr.add(run(d))
			rr.add(run(r))
			wait := p.cpuProfile("cpu-"+name+".pprof", i)
			pr.add(run(p))
			wait()
		}
		dm, rm, pm = dr.median(), rr.median(), pr.median()
		proxyCPU += pr.proxyCPU
		moved += pr.gib
		busy = append(busy, row{name, dm.busy.total(), rm.busy.total(), pm.busy.total(), true},
			row{name + ", of which relay or proxy", 0, rm.busy.proxy, pm.busy.proxy, false})
		return dm, rm, pm
	}
	for _, size := range []int{100, 1000} {
		name := fmt.Sprintf("produce-%d", size)
		if !want(name) {
			continue
		}
		dm, rm, pm := phase(name, func(t target) sample { return produce(t, size) })
		add(fmt.Sprintf("produce %d B records", size), "MiB/s", dm.mib, rm.mib, pm.mib)
		add(fmt.Sprintf("produce %d B records", size), "records/s", dm.records, rm.records, pm.records)
		if size == 1000 {
			halfRate = dm.records / 2
		}
	}
	if want("consume") {
		dm, rm, pm := phase("consume", consume)
		add("consume", "MiB/s", dm.mib, rm.mib, pm.mib)
	}

	if want("latency") {
		if halfRate == 0 {
			halfRate = produce(d, 1000).records / 2
		}
		// Half load, as the target is stated, and a tenth of full load, where
		// the three processes are not yet competing for the two cores.
		for _, rate := range []float64{halfRate, halfRate / 5} {
			d50, d99 := latency(d, rate)
			r50, r99 := latency(r, rate)
			p50, p99 := latency(p, rate)
			add(fmt.Sprintf("produce latency p50 at %.0f records/s", rate), "ms", d50, r50, p50)
			add(fmt.Sprintf("produce latency p99 at %.0f records/s", rate), "ms", d99, r99, p99)
			rows = append(rows, row{metric: "  p99 added over direct (ms)", relay: nonzero(r99 - d99), proxy: nonzero(p99 - d99)})
		}
	}

	if want("logins") {
		dl, _ := loginRate(d, *logins)
		rl, _ := loginRate(r, *logins)
		wait := p.cpuProfile("cpu-logins.pprof", 0)
		pl, pPerCPU := loginRate(p, *logins)
		wait()
		add("SCRAM-SHA-512 logins, each on a new TLS connection", "logins/s", dl, rl, pl)
		note("proxy logins per CPU second (TLS handshake included)", pPerCPU)
		note("SCRAM-SHA-512 server exchange alone, logins per core second", scramOnly(*logins*5))
	}
	if want("idle") {
		rss, live, err := idleMemory(p, *idle)
		if err != nil {
			return err
		}
		note(fmt.Sprintf("memory per idle authenticated connection at %d, RSS (KiB)", *idle), rss)
		note("  of which live heap and goroutine stack (KiB)", live)
	}
	if moved > 0 {
		note("proxy CPU seconds per GiB moved", proxyCPU/moved)
	}
	kafkaLine, principalSection := "", ""
	if want("kafka-produce") || want("kafka-consume") || want("kafka-principal") {
		krows, kbusy, desc, pm, err := benchKafka(filepath.Join(dir, "kafka"), certFile, keyFile, clientTLS)
		if err != nil {
			kafkaLine = "real Kafka: NOT MEASURED, the test bed is unavailable: " + err.Error() + "\n"
		} else {
			rows = append(rows, krows...)
			busy = append(busy, kbusy...)
			kafkaLine = desc + "\n"
			principalSection = pm
		}
	}

	stateSection := ""
	if want("state") {
		if stateSection, err = benchState(dir, certFile, keyFile, clientTLS, []int{10, 100000}); err != nil {
			return err
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "scram-proxy benchmark, %s, %d-second phases, throughput the median of %d interleaved rounds\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), int(dur.Seconds()), *rounds)
	fmt.Fprintf(&b, "direct: kfake with TLS+SCRAM; relay: bare TLS relay (io.Copy) before kfake with SCRAM; proxy: scram-proxy before kfake\n")
	b.WriteString(kafkaLine)
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-62s %10s %10s %10s %8s %8s\n", "metric", "direct", "relay", "proxy", "p/direct", "p/relay")
	for _, r := range rows {
		b.WriteString(r.format())
	}
	fmt.Fprintf(&b, "\nCPU cores busy (%d on this machine): bench process (client + kfake) plus relay or proxy\n", runtime.NumCPU())
	fmt.Fprintf(&b, "%-62s %10s %10s %10s\n", "phase", "direct", "relay", "proxy")
	for _, r := range busy {
		r.ratios = false
		b.WriteString(r.format())
	}
	b.WriteString(principalSection)
	b.WriteString(stateSection)
	fmt.Print(b.String())
	if *out != "" {
		_ = os.MkdirAll(filepath.Dir(*out), 0o755)
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

// row is one line of the table; zero values print blank.
type row struct {
	metric               string
	direct, relay, proxy float64
	ratios               bool
}

func (r row) format() string {
	cell := func(v float64) string {
		if v == 0 {
			return ""
		}
		return fmtNum(v)
	}
	ratio := func(a, b float64) string {
		if !r.ratios || a == 0 || b == 0 {
			return ""
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	return fmt.Sprintf("%-62s %10s %10s %10s %8s %8s\n", r.metric, cell(r.direct), cell(r.relay), cell(r.proxy),
		ratio(r.proxy, r.direct), ratio(r.proxy, r.relay))
}

// nonzero keeps a difference that rounds to nothing visible in the table.
func nonzero(v float64) float64 {
	if v == 0 {
		return 1e-9
	}
	return v
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// startProxy builds (unless -proxy) and runs the proxy process in front of
// upstream, returning its client address, its metrics address (with
// -profile) and its pid.
func startProxy(dir, certFile, keyFile, upstream string, edit func(*config.Config)) (addr, debug string, pid int, stop func(), err error) {
	if err := buildProxy(dir); err != nil {
		return "", "", 0, nil, err
	}
	bin := *binPath
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", 0, nil, err
	}
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, pass, []byte("bench-salt-0123456789abc"), 4096)
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, []byte("users:\n  "+user+":\n    SCRAM-SHA-512: \""+c.StoredForm()+"\"\n"), 0o600); err != nil {
		return "", "", 0, nil, err
	}
	// pprof is on for the runtime's memory statistics; it costs nothing
	// until a profile is requested.
	port := freePort()
	debug = "127.0.0.1:" + strconv.Itoa(freePort())
	cfg := config.Defaults()
	cfg.Listener.Address = "127.0.0.1:" + strconv.Itoa(port)
	cfg.Listener.AdvertisedAddress = "localhost:" + strconv.Itoa(port)
	cfg.Listener.MaxConnections = 20000
	cfg.Listener.TLS.CertFile, cfg.Listener.TLS.KeyFile = certFile, keyFile
	cfg.Credentials.File = users
	cfg.Upstream.BootstrapServers = []string{upstream}
	cfg.Metrics = config.Metrics{Address: debug, Pprof: true, PprofAddress: debug} // one loopback listener
	cfg.Log.Level = "warn"
	if edit != nil {
		edit(&cfg)
	}
	cfgFile := filepath.Join(dir, "proxy.yaml")
	b, err := config.Marshal(cfg)
	if err != nil {
		return "", "", 0, nil, err
	}
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return "", "", 0, nil, err
	}
	cmd := exec.Command(bin, "--config", cfgFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", "", 0, nil, err
	}
	stop = func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	// A proxy on a large shared state binds its listener only once the
	// state is restored.
	if !listeningWithin("127.0.0.1:"+strconv.Itoa(port), 2*time.Minute) {
		stop()
		return "", "", 0, nil, fmt.Errorf("proxy did not start")
	}
	return "localhost:" + strconv.Itoa(port), debug, cmd.Process.Pid, stop, nil
}

// buildProxy builds the proxy into dir unless -proxy names it or it was
// built already: once for every proxy of the run.
func buildProxy(dir string) error {
	if *binPath != "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(dir, "scram-proxy")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/scram-proxy/scram-proxy/cmd/scram-proxy").CombinedOutput(); err != nil {
		return fmt.Errorf("build proxy: %v\n%s", err, b)
	}
	*binPath = bin
	return nil
}

// startRelay runs this program again as the bare TLS relay in front of
// upstream, returning its address and pid.
func startRelay(certFile, keyFile, upstream string) (string, int, func(), error) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	cmd := exec.Command(os.Args[0], "-relay", upstream, "-relay-files", addr+","+certFile+","+keyFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if !listening(addr) {
		stop()
		return "", 0, nil, fmt.Errorf("relay did not start")
	}
	return strings.Replace(addr, "127.0.0.1", "localhost", 1), cmd.Process.Pid, stop, nil
}

// listening waits up to 5 seconds for addr to accept a connection.
func listening(addr string) bool { return listeningWithin(addr, 5*time.Second) }

// listeningWithin waits up to d for addr to accept a connection.
func listeningWithin(addr string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// runRelay is the bare relay: TLS termination and io.Copy both ways,
// nothing else; the reference for what a separate process costs.
func runRelay() error {
	f := strings.Split(*relayFiles, ",")
	if len(f) != 3 {
		return fmt.Errorf("-relay-files: want addr,cert,key")
	}
	cert, err := tls.LoadX509KeyPair(f[1], f[2])
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", f[0], &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", *relay)
			if err != nil {
				return
			}
			defer up.Close()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			_, _ = io.Copy(c, up)
		}()
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func client(t target, opts ...kgo.Opt) *kgo.Client {
	// No compression: the bytes measured are the bytes on the wire.
	dial := kgo.DialTLSConfig(t.tls)
	if t.pinned {
		d := &tls.Dialer{Config: t.tls}
		dial = kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, t.addr)
		})
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.addr), dial,
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
	if err != nil {
		panic(err)
	}
	return cl
}

// want reports whether -phases names phase.
func want(phase string) bool {
	for _, p := range strings.Split(*phases, ",") {
		if strings.TrimSpace(p) == phase {
			return true
		}
	}
	return false
}

// sample is one throughput phase's result.
type sample struct {
	mib, records float64
	busy         cores
	secs         float64
}

// throughput collects a phase's rounds.
type throughput struct {
	samples       []sample
	proxyCPU, gib float64 // summed over rounds
}

func (t *throughput) add(s sample) {
	t.samples = append(t.samples, s)
	t.proxyCPU += s.busy.proxy * s.secs
	t.gib += s.mib * s.secs / 1024
}

// median is the round with the median MiB/s.
func (t *throughput) median() sample {
	s := append([]sample(nil), t.samples...)
	sort.Slice(s, func(i, j int) bool { return s[i].mib < s[j].mib })
	return s[len(s)/2]
}

// cores is the CPU a phase used, in cores: the bench process (client and
// kfake) and the proxy process.
type cores struct{ bench, proxy float64 }

func (c cores) total() float64 { return c.bench + c.proxy }

// meter starts measuring CPU use; the returned func reports it.
func meter(t target) func() cores {
	start, self, proxy := time.Now(), cpuSeconds(os.Getpid()), cpuSeconds(t.pid)
	return func() cores {
		el := time.Since(start).Seconds()
		return cores{(cpuSeconds(os.Getpid()) - self) / el, (cpuSeconds(t.pid) - proxy) / el}
	}
}

// produce pushes size-byte records for the phase duration and returns
// acknowledged MiB/s and records/s, and the CPU the phase used.
func produce(t target, size int) sample { return produceFor(t, size, *dur) }

// produceFor is produce for d.
func produceFor(t target, size int, d time.Duration) sample {
	cl := client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(200000), kgo.ProducerBatchMaxBytes(1<<20))
	defer cl.Close()
	value := make([]byte, size)
	_, _ = rand.Read(value)
	var acked atomic.Int64
	cl.ProduceSync(context.Background(), &kgo.Record{Value: value}) // warm up: connect and log in
	// The phase starts after the warm-up, however long that took.
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start, busy := time.Now(), meter(t)
	for ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	}
	el := time.Since(start).Seconds()
	n := float64(acked.Load())
	return sample{mib: n * float64(size) / el / (1 << 20), records: n / el, busy: busy(), secs: el}
}

// consume reads the synthetic log for the phase duration: MiB/s of values,
// and the CPU the phase used.
func consume(t target) sample {
	cl := client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(10<<20))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var bytes int64
	start, busy := time.Now(), meter(t)
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { bytes += int64(len(r.Value)) })
	}
	el := time.Since(start).Seconds()
	return sample{mib: float64(bytes) / el / (1 << 20), busy: busy(), secs: el}
}

// latency produces 1000-byte records at rate per second and reports the
// p50 and p99 acknowledgement latency in milliseconds.
func latency(t target, rate float64) (float64, float64) {
	cl := client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	defer cl.Close()
	cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("warm")})
	var mu sync.Mutex
	var lat []float64
	var wg sync.WaitGroup
	value := make([]byte, 1000)
	_, _ = rand.Read(value)
	// Paced in bursts every millisecond: rate/1000 records per tick.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	perTick := max(1, int(rate/1000))
	end := time.Now().Add(*dur)
	for time.Now().Before(end) {
		<-tick.C
		start := time.Now()
		for i := 0; i < perTick; i++ {
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					mu.Lock()
					lat = append(lat, float64(time.Since(start).Microseconds())/1000)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	sort.Float64s(lat)
	if len(lat) == 0 {
		return 0, 0
	}
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// login performs one TLS connection and SCRAM-SHA-512 login (handshake v1,
// two SaslAuthenticate rounds) with a client whose salted password is
// cached, so the cost measured is the server's.
func login(t target, cl *xscram.Client) (net.Conn, error) { return loginThen(t, cl, nil) }

// loginThen is login followed, when then is not nil, by one round trip of
// then, whose response must parse. A Metadata request
// there makes the proxy open the session's upstream connection, logged in
// upstream as the principal's identity.
func loginThen(t target, cl *xscram.Client, then kmsg.Request) (net.Conn, error) {
	w, err := dialWire(t)
	if err != nil {
		return nil, err
	}
	if err := w.handshake("SCRAM-SHA-512"); err != nil {
		w.Close()
		return nil, err
	}
	conv := cl.NewConversation()
	msg, _ := conv.Step("")
	for i := 0; i < 2; i++ {
		r, err := w.authenticate([]byte(msg))
		if err != nil {
			w.Close()
			return nil, err
		}
		if msg, err = conv.Step(string(r)); err != nil {
			w.Close()
			return nil, err
		}
	}
	if _, err := w.then(then); err != nil {
		w.Close()
		return nil, err
	}
	return w.Conn, nil
}

// wire is a client's TLS connection to a target, one request at a time.
type wire struct {
	net.Conn
	frames *protocol.FrameReader
	corr   int32
}

// dialWire opens a TLS connection to t.
func dialWire(t target) (*wire, error) {
	c, err := tls.Dial("tcp", t.addr, t.tls)
	if err != nil {
		return nil, err
	}
	return &wire{Conn: c, frames: protocol.NewFrameReader(c, 1<<20, nil)}, nil
}

// roundTrip sends req and returns the response frame, correlation id
// first; it is valid until the next round trip.
func (w *wire) roundTrip(req kmsg.Request) ([]byte, error) {
	w.corr++
	var f kmsg.RequestFormatter
	if _, err := w.Write(f.AppendRequest(nil, req, w.corr)); err != nil {
		return nil, err
	}
	b, err := w.frames.Read()
	if err == nil && len(b) < 4 {
		err = protocol.ErrTruncated
	}
	return b, err
}

// handshake sends SaslHandshake v1 for mechanism; the answer must carry
// no error.
func (w *wire) handshake(mechanism string) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mechanism
	b, err := w.roundTrip(hs)
	if err != nil {
		return err
	}
	r := kmsg.NewPtrSASLHandshakeResponse()
	r.SetVersion(1)
	if err := r.ReadFrom(b[4:]); err != nil {
		return err
	}
	if r.ErrorCode != 0 {
		return fmt.Errorf("SaslHandshake: error code %d", r.ErrorCode)
	}
	return nil
}

// authenticate sends one SaslAuthenticate v1 round with msg and returns
// the server's bytes; a response with an error code is an error.
func (w *wire) authenticate(msg []byte) ([]byte, error) {
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.SetVersion(1)
	a.SASLAuthBytes = msg
	b, err := w.roundTrip(a)
	if err != nil {
		return nil, err
	}
	r := kmsg.NewPtrSASLAuthenticateResponse()
	r.SetVersion(1)
	if err := r.ReadFrom(b[4:]); err != nil {
		return nil, err
	}
	if r.ErrorCode != 0 {
		msg := ""
		if r.ErrorMessage != nil {
			msg = ": " + *r.ErrorMessage
		}
		return nil, fmt.Errorf("login failed: SaslAuthenticate error code %d%s", r.ErrorCode, msg)
	}
	return r.SASLAuthBytes, nil
}

// then makes one round trip of req, when not nil, and returns its
// response, which must parse.
func (w *wire) then(req kmsg.Request) (kmsg.Response, error) {
	if req == nil {
		return nil, nil
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	b, err := w.roundTrip(req)
	if err == nil {
		err = resp.ReadFrom(b[4+headerTagBytes(resp):])
	}
	if err != nil {
		return nil, fmt.Errorf("%s after login: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// headerTagBytes is the size of the empty tagged-field section of a
// flexible response header (ApiVersions responses have none).
func headerTagBytes(r kmsg.Response) int {
	if r.IsFlexible() && r.Key() != 18 {
		return 1
	}
	return 0
}

// loginRate runs n logins over 4 workers; it returns logins/s and, for the
// proxy, logins per CPU second of the proxy process.
func loginRate(t target, n int) (float64, float64) { return loginRateThen(t, n, 0, nil) }

// loginRateThen is loginRate that also stops after limit (0: none), with
// then (when not nil) making each login's follow-up request (loginThen);
// a failed login or request is reported on stderr and does not count.
func loginRateThen(t target, n int, limit time.Duration, then func() kmsg.Request) (float64, float64) {
	cl, _ := xscram.SHA512.NewClientUnprepped(user, pass, "")
	req := func() kmsg.Request {
		if then == nil {
			return nil
		}
		return then()
	}
	// Derive and cache the salted password; through a proxy in client
	// mode, also have the principal's broker token created.
	if c, err := loginThen(t, cl, req()); err == nil {
		c.Close()
	}
	var failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	cpu0 := cpuSeconds(t.pid)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(limit)
	var done atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && (limit == 0 || time.Now().Before(end)) {
				c, err := loginThen(t, cl, req())
				if err != nil {
					if failed.Add(1) == 1 {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					continue
				}
				c.Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "bench: %s: %d of %d logins failed, first: %v\n", t.name, f, f+done.Load(), firstErr)
	}
	perCPU := 0.0
	if cpu := cpuSeconds(t.pid) - cpu0; cpu > 0 {
		perCPU = float64(done.Load()) / cpu
	}
	return float64(done.Load()) / el, perCPU
}

// scramOnly runs n SCRAM-SHA-512 exchanges through the proxy's own SCRAM
// server (internal/sasl) in this process, one at a time, and returns
// logins per second of server-side time: the authentication cost without
// TLS, sockets or the client's share.
func scramOnly(n int) float64 {
	cred, _ := sasl.DeriveCredential(sasl.ScramSHA512, pass, []byte("bench-salt-0123456789abc"), 4096)
	a := sasl.NewAuthenticator(sasl.Options{Users: sasl.UserLookupFunc(
		func(_ context.Context, _ sasl.Mechanism, name string) (sasl.Credential, error) {
			if name != user {
				return sasl.Credential{}, sasl.ErrUnknownCredential
			}
			return cred, nil
		})})
	cl, _ := xscram.SHA512.NewClientUnprepped(user, pass, "")
	ctx := context.Background()
	var server time.Duration
	for i := 0; i < n; i++ {
		cc := cl.NewConversation()
		first, _ := cc.Step("")
		start := time.Now()
		conv, _ := a.Start(ctx, sasl.ScramSHA512)
		sf, err := conv.Step([]byte(first))
		server += time.Since(start)
		if err != nil {
			panic(err)
		}
		final, _ := cc.Step(string(sf))
		start = time.Now()
		sfin, err := conv.Step([]byte(final))
		server += time.Since(start)
		if err != nil {
			panic(err)
		}
		if _, err := cc.Step(string(sfin)); err != nil {
			panic(err)
		}
	}
	return float64(n) / server.Seconds()
}

// idleMemory opens n authenticated connections to the proxy, leaves them
// idle, and returns the proxy's resident memory growth per connection (KiB).
func idleMemory(t target, n int) (rss, live float64, err error) {
	cl, _ := xscram.SHA512.NewClientUnprepped(user, pass, "")
	before, liveBefore := rssKiB(t.pid), t.liveKiB()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := login(t, cl)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, 0, fmt.Errorf("%d of %d idle connections failed to log in", f, n)
	}
	time.Sleep(2 * time.Second) // let the proxy settle
	rss = float64(rssKiB(t.pid)-before) / float64(len(conns))
	live = (t.liveKiB() - liveBefore) / float64(len(conns))
	t.profile("heap", "gc=1", "heap-idle.pprof")
	t.profile("heap", "debug=1", "heap-idle.txt") // ends with the runtime's MemStats: stacks, GC
	t.profile("goroutine", "debug=1", "goroutines-idle.txt")
	return rss, live, nil
}

// liveKiB is the proxy's live heap after a collection plus its goroutine
// stacks, from the runtime's statistics at the end of a debug heap profile.
func (t target) liveKiB() float64 {
	b, err := t.pprof("heap", "gc=1&debug=1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: memstats:", err)
		return 0
	}
	var heap, stack float64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[1] == "HeapAlloc":
			heap, _ = strconv.ParseFloat(f[3], 64)
		case len(f) >= 4 && f[1] == "Stack":
			stack, _ = strconv.ParseFloat(f[3], 64)
		}
	}
	return (heap + stack) / 1024
}

// cpuSeconds is the process's user+system CPU time (0 for pid 0).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func rssKiB(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}
