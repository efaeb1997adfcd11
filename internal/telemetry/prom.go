package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Prom implements the proxy's Metrics interface on its own registry. Labels
// come from bounded sets only: listener, mechanism, outcome, close reason,
// API name, source. Safe for concurrent use.
type Prom struct {
	reg        *prometheus.Registry
	connsOpen  *prometheus.GaugeVec
	connsTotal *prometheus.CounterVec
	closed     *prometheus.CounterVec
	logins     *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	dialErrors prometheus.Counter
	local      *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	badRecords *prometheus.CounterVec
	refused    *prometheus.CounterVec
	upTokens   prometheus.Gauge
	upTokenEvt *prometheus.CounterVec
	stIgnored  *prometheus.CounterVec
	stOffset   prometheus.Gauge
	stRecords  prometheus.Gauge
	stDigest   prometheus.Gauge
	tokensKey  *prometheus.GaugeVec
	brTokens   prometheus.Gauge
	brDescribe *prometheus.CounterVec
}

// NewProm registers the proxy's metrics, plus Go runtime and process
// collectors, on a fresh registry.
func NewProm() *Prom {
	p := &Prom{
		reg: prometheus.NewRegistry(),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scram_proxy_connections_open",
			Help: "Client connections currently open."}, []string{"listener"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_connections_total",
			Help: "Client connections accepted."}, []string{"listener"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_connections_closed_total",
			Help: "Client connections closed, by reason."}, []string{"listener", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_connections_refused_total",
			Help: "Client connections closed at accept, by reason."}, []string{"listener", "reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_logins_total",
			Help: "SASL logins and re-authentications, by mechanism and outcome."}, []string{"mechanism", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_bytes_total",
			Help: "Bytes relayed, by direction."}, []string{"direction"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "scram_proxy_request_duration_seconds",
			Help:    "Time from reading a request to writing its response, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
		dialErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "scram_proxy_upstream_dial_errors_total",
			Help: "Failed upstream connection attempts."}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_admin_requests_total",
			Help: "Delegation-token and SCRAM admin requests answered by the proxy, by API and outcome."}, []string{"api", "outcome"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_credential_reloads_total",
			Help: "Credential source loads, by source and outcome."}, []string{"source", "outcome"}),
		badRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_state_records_skipped_total",
			Help: "Records in state.dir that did not load and were skipped, by kind."}, []string{"kind"}),
		upTokens: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scram_proxy_upstream_tokens_held",
			Help: "Client principals holding a broker delegation token (upstream.principal_mode client)."}),
		upTokenEvt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_upstream_tokens_total",
			Help: "Broker delegation tokens for client principals, by event: created, renewed, failed."}, []string{"event"}),
		tokensKey: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scram_proxy_delegation_tokens",
			Help: "Delegation tokens the proxy holds, by the id of the key that minted them (delegation_tokens.keys; " +
				"\"(unlisted)\": keys no longer listed). Expired tokens count until the next expiry check."}, []string{"key_id"}),
		brTokens: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scram_proxy_broker_tokens",
			Help: "Delegation tokens in the brokers' last description (delegation_tokens.store broker)."}),
		brDescribe: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_broker_token_describes_total",
			Help: "DescribeDelegationToken requests the proxy sent to refresh its view of the brokers' tokens, by outcome: ok, error."}, []string{"outcome"}),
		stIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scram_proxy_state_records_rejected_total",
			Help: "Records of the state topic (state.backend kafka) ignored because they did not open or decode, by reason."}, []string{"reason"}),
		stOffset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scram_proxy_state_offset",
			Help: "Offset of the last state topic record this proxy applied (-1: none)."}),
		stRecords: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scram_proxy_state_keys",
			Help: "Live keys (users, tokens, secrets) this proxy holds from the state topic."}),
		stDigest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scram_proxy_state_digest",
			Help: "Order-independent 48-bit digest of the state held from the state topic: proxies that read the same topic show the same value."}),
	}
	p.reg.MustRegister(p.connsOpen, p.connsTotal, p.closed, p.refused, p.logins, p.bytes, p.latency, p.dialErrors, p.local, p.reloads, p.badRecords,
		p.upTokens, p.upTokenEvt, p.tokensKey, p.brTokens, p.brDescribe, p.stIgnored, p.stOffset, p.stRecords, p.stDigest,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.stOffset.Set(-1)
	return p
}

// Handler serves the registry in the Prometheus text format.
func (p *Prom) Handler() http.Handler { return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}) }

// ConnectionOpened implements proxy.Metrics.
func (p *Prom) ConnectionOpened(l string) {
	p.connsOpen.WithLabelValues(l).Inc()
	p.connsTotal.WithLabelValues(l).Inc()
}

// ConnectionClosed implements proxy.Metrics.
func (p *Prom) ConnectionClosed(l, reason string) {
	p.connsOpen.WithLabelValues(l).Dec()
	p.closed.WithLabelValues(l, reason).Inc()
}

// ConnectionRefused implements proxy.Metrics.
func (p *Prom) ConnectionRefused(l, reason string) { p.refused.WithLabelValues(l, reason).Inc() }

// UpstreamTokensHeld implements upstream.TokenMetrics.
func (p *Prom) UpstreamTokensHeld(n int) { p.upTokens.Set(float64(n)) }

// UpstreamToken implements upstream.TokenMetrics.
func (p *Prom) UpstreamToken(event string) { p.upTokenEvt.WithLabelValues(event).Inc() }

// BrokerTokensDescribed implements upstream.BrokerTokenMetrics.
func (p *Prom) BrokerTokensDescribed(tokens int, err error) {
	if err != nil {
		p.brDescribe.WithLabelValues("error").Inc()
		return
	}
	p.brDescribe.WithLabelValues("ok").Inc()
	p.brTokens.Set(float64(tokens))
}

// Login implements proxy.Metrics.
func (p *Prom) Login(m, outcome string) { p.logins.WithLabelValues(m, outcome).Inc() }

// UpstreamDialFailed implements proxy.Metrics.
func (p *Prom) UpstreamDialFailed() { p.dialErrors.Inc() }

// BytesRelayed implements proxy.Metrics.
func (p *Prom) BytesRelayed(in, out int64) {
	if in > 0 {
		p.bytes.WithLabelValues("from_client").Add(float64(in))
	}
	if out > 0 {
		p.bytes.WithLabelValues("to_client").Add(float64(out))
	}
}

// RequestDone implements proxy.Metrics.
func (p *Prom) RequestDone(key int16, d time.Duration) {
	p.latency.WithLabelValues(apiName(key)).Observe(d.Seconds())
}

// LocalRequest implements proxy.Metrics.
func (p *Prom) LocalRequest(key int16, outcome string) {
	p.local.WithLabelValues(apiName(key), outcome).Inc()
}

// Reload counts one credential source load.
func (p *Prom) Reload(source, outcome string) { p.reloads.WithLabelValues(source, outcome).Inc() }

// DelegationTokens sets the number of delegation tokens held for a key id.
func (p *Prom) DelegationTokens(keyID string, n int) {
	p.tokensKey.WithLabelValues(keyID).Set(float64(n))
}

// RecordSkipped counts one stored record that did not load (kind is one of
// the state package's record kinds).
func (p *Prom) RecordSkipped(kind string) { p.badRecords.WithLabelValues(kind).Inc() }

// apiName bounds the label to kmsg's names (unknown keys collapse).
func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "Unknown" {
		return n
	}
	return "key_" + strconv.Itoa(int(key)%1000)
}

// StateRecordIgnored counts a state topic record that was ignored.
func (p *Prom) StateRecordIgnored(reason string) { p.stIgnored.WithLabelValues(reason).Inc() }

// StateApplied publishes where the state topic has been read to and a
// digest of what is held (48 bits: exact in a float64).
func (p *Prom) StateApplied(offset int64, records int, digest uint64) {
	p.stOffset.Set(float64(offset))
	p.stRecords.Set(float64(records))
	p.stDigest.Set(float64(digest))
}
