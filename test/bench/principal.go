package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	xscram "github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

var (
	pmRounds    = flag.Int("pm-rounds", 15, "side-by-side rounds per phase of the principal_mode client against proxy comparison")
	pmAlternate = flag.Int("pm-alternate", 9, "one-at-a-time rounds per phase of the principal_mode comparison, in alternating order")
	pmDur       = flag.Duration("pm-duration", 2*time.Second, "length of each produce and login round of the principal_mode comparison")
)

// figure is one round's result of one target: its rate, and the same work
// per CPU second of the proxy process (less sensitive than the rate to
// what else runs on the machine). Higher is better for both.
type figure struct{ rate, perCPU float64 }

// pairs is one phase of the principal-mode comparison: a figure per round
// for the baseline (proxy mode) and for client mode.
type pairs struct{ base, client []figure }

// ratios are client/base per round of the value v picks.
func (p pairs) ratios(v func(figure) float64) []float64 {
	var r []float64
	for i := range p.base {
		if v(p.base[i]) > 0 {
			r = append(r, v(p.client[i])/v(p.base[i]))
		}
	}
	return r
}

func (p pairs) medians(v func(figure) float64) (base, client float64) {
	var b, c []float64
	for i := range p.base {
		b, c = append(b, v(p.base[i])), append(c, v(p.client[i]))
	}
	return median(b), median(c)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// alternate runs base and client n times each, one at a time, in the
// order base, client in even rounds and client, base in odd ones, so that
// drift of the shared machine falls on both alike and each ratio compares
// two runs next to each other in time.
func alternate(n int, base, client func() figure) pairs {
	var p pairs
	for i := 0; i < n; i++ {
		var b, c figure
		if i%2 == 0 {
			b, c = base(), client()
		} else {
			c, b = client(), base()
		}
		p.base, p.client = append(p.base, b), append(p.client, c)
	}
	return p
}

// sideBySide runs base and client n times each, both at once: whatever
// else loads the machine during a round loads both, so a round's ratio
// does not depend on it (on a machine shared with other work, one-at-a-time
// rounds vary by a quarter from round to round, side-by-side ones by a
// few percent). Each pays for the other's load, so the rates are lower
// than alone; which one starts first alternates.
func sideBySide(n int, base, client func() figure) pairs {
	var p pairs
	for i := 0; i < n; i++ {
		var b, c figure
		var wg sync.WaitGroup
		first, second := func() { b = base() }, func() { c = client() }
		if i%2 == 1 {
			first, second = second, first
		}
		wg.Add(2)
		go func() { defer wg.Done(); first() }()
		go func() { defer wg.Done(); second() }()
		wg.Wait()
		p.base, p.client = append(p.base, b), append(p.client, c)
	}
	return p
}

// metadataNoTopics is a Metadata request for no topic: through the proxy
// it makes the session open its upstream connection, logged in upstream as
// the session's identity, and costs the broker next to nothing else.
func metadataNoTopics() kmsg.Request {
	r := kmsg.NewPtrMetadataRequest()
	r.SetVersion(12)
	r.Topics = []kmsg.MetadataRequestTopic{}
	return r
}

// benchPrincipalModes compares the proxy in upstream.principal_mode: proxy
// (base, started by benchKafka) with a second proxy in front of the same
// broker in principal_mode: client, in rounds side by side and one at a
// time: 1000 B produce with acks=all, consume of the first 512 MiB of the
// topic (produced: bytes in it before), and logins with the principal's
// broker token already cached, each login alone and followed by a request
// that opens the upstream connection. It returns the section of the
// report.
func benchPrincipalModes(c *kafkabed.Cluster, dir, certFile, keyFile string, proxyTLS *tls.Config, base target, produced float64) (string, error) {
	addr, _, pid, stop, err := startProxy(filepath.Join(dir, "proxy-client-mode"), certFile, keyFile, c.Bootstrap(kafkabed.SASLPlaintext)[0],
		func(cfg *config.Config) {
			cfg.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: kafkaProxyUser, Password: kafkaProxyPass}
			cfg.Upstream.PrincipalMode = "client"
		})
	if err != nil {
		return "", err
	}
	defer stop()
	cm := target{name: "kafka client mode", addr: addr, tls: proxyTLS, pid: pid}
	// Warm up: the client-mode proxy has the principal's broker token
	// created at its first login, and both proxies' first connections
	// upstream are made, before any round is timed.
	for _, t := range []target{base, cm} {
		cl, _ := xscram.SHA512.NewClientUnprepped(user, pass, "")
		conn, err := loginThen(t, cl, metadataNoTopics())
		if err != nil {
			return "", fmt.Errorf("warm-up login through %s: %w", t.name, err)
		}
		conn.Close()
		produceFor(t, 1000, time.Second)
	}
	loadBefore := loadAvg()

	var mu sync.Mutex // produced, from side-by-side rounds
	prod := func(t target) func() figure {
		return func() figure {
			s := produceFor(t, 1000, *pmDur)
			mu.Lock()
			produced += s.records * s.secs * 1000
			mu.Unlock()
			return figure{s.mib, perCore(s.mib, s.busy.proxy)}
		}
	}
	var limit int64
	cons := func(t target) func() figure {
		return func() figure {
			s := consumeBytes(t, limit)
			return figure{s.mib, perCore(s.mib, s.busy.proxy)}
		}
	}
	logins := func(then func() kmsg.Request) func(t target) func() figure {
		return func(t target) func() figure {
			return func() figure {
				r, perCPU := loginRateThen(t, math.MaxInt, *pmDur, then)
				return figure{r, perCPU}
			}
		}
	}
	type phase struct {
		metric, unit, perCPU, target string
		run                          func(target) func() figure
		side, alone                  pairs
	}
	phases := []*phase{
		{metric: "produce 1000 B records, acks=all", unit: "MiB/s", perCPU: "MiB per proxy CPU second", target: ">= 0.95x", run: prod},
		{metric: "consume the first 512 MiB from offset 0", unit: "MiB/s", perCPU: "MiB per proxy CPU second", target: ">= 0.95x"},
		{metric: "logins, each on a new TLS connection", unit: "logins/s", perCPU: "logins per proxy CPU second", target: ">= 0.90x", run: logins(nil)},
		{metric: "logins + Metadata, opening the upstream connection", unit: "logins/s", perCPU: "logins per proxy CPU second", target: ">= 0.90x",
			run: logins(metadataNoTopics)},
	}
	for _, ph := range phases {
		if ph.run == nil { // consume: what the produce rounds left in the topic
			ph.run = cons
			limit = int64(min(produced, 512<<20))
			ph.metric = fmt.Sprintf("consume the first %d MiB from offset 0", limit>>20)
			if limit == 0 {
				continue
			}
		}
		fmt.Fprintf(os.Stderr, "bench: principal_mode client against proxy: %s\n", ph.metric)
		ph.side = sideBySide(*pmRounds, ph.run(base), ph.run(cm))
		ph.alone = alternate(*pmAlternate, ph.run(base), ph.run(cm))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nupstream.principal_mode client against proxy mode, two proxies before the same real Kafka, %v produce and login rounds, load average %s before and %s after\n",
		*pmDur, loadBefore, loadAvg())
	fmt.Fprintf(&b, "side by side: both proxies under load at once, %d rounds; alone: one at a time, %d rounds in alternating order\n", *pmRounds, *pmAlternate)
	fmt.Fprintf(&b, "c/proxy: the median of the per-round ratios client/proxy; range: the lowest and highest per-round ratio\n")
	fmt.Fprintf(&b, "%-62s %-12s %8s %8s %8s %15s %8s\n", "metric", "rounds", "proxy", "client", "c/proxy", "ratio range", "target")
	row := func(metric, how, target string, p pairs, v func(figure) float64) {
		r := p.ratios(v)
		if len(r) == 0 {
			return
		}
		sort.Float64s(r)
		mb, mc := p.medians(v)
		fmt.Fprintf(&b, "%-62s %-12s %8s %8s %7.3fx %6.3fx-%.3fx %8s\n", metric, how, fmtNum(mb), fmtNum(mc), median(r), r[0], r[len(r)-1], target)
	}
	rate := func(f figure) float64 { return f.rate }
	perCPU := func(f figure) float64 { return f.perCPU }
	for _, ph := range phases {
		row(ph.metric+" ("+ph.unit+")", "side by side", ph.target, ph.side, rate)
		row("", "alone", "", ph.alone, rate)
		row("  "+ph.perCPU, "side by side", "", ph.side, perCPU)
		row("", "alone", "", ph.alone, perCPU)
	}
	return b.String(), nil
}

// perCore is rate per CPU second of the proxy, which used cores of CPU
// over the phase (0 when unknown).
func perCore(rate, cores float64) float64 {
	if cores <= 0 {
		return 0
	}
	return rate / cores
}

// loadAvg is the machine's 1-minute load average, as /proc/loadavg says.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
