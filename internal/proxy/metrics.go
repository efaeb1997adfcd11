package proxy

import "time"

// Metrics receives the proxy's counters. Implementations must be safe for
// concurrent use and keep label cardinality bounded: the string arguments are
// always from small fixed sets (listener names, mechanisms, outcomes, close
// reasons), never principals or client ids.
type Metrics interface {
	ConnectionOpened(listener string)
	ConnectionClosed(listener, reason string)
	// ConnectionRefused counts a connection closed at accept, before it
	// was opened as a session (reason: "max_connections_per_ip").
	ConnectionRefused(listener, reason string)
	Login(mechanism, outcome string)
	UpstreamDialFailed()
	// BytesRelayed counts frame bytes as they pass, each way.
	BytesRelayed(fromClient, toClient int64)
	// RequestDone observes one request's time from the proxy reading it to
	// the proxy writing its response.
	RequestDone(apiKey int16, d time.Duration)
	// LocalRequest counts a request the proxy answered itself (delegation
	// token and SCRAM admin APIs) by outcome ("ok" or a Kafka error name).
	LocalRequest(apiKey int16, outcome string)
}

type nopMetrics struct{}

// NopMetrics returns a Metrics that records nothing.
func NopMetrics() Metrics { return nopMetrics{} }

func (nopMetrics) ConnectionOpened(string)          {}
func (nopMetrics) ConnectionClosed(string, string)  {}
func (nopMetrics) ConnectionRefused(string, string) {}
func (nopMetrics) Login(string, string)             {}
func (nopMetrics) UpstreamDialFailed()              {}
func (nopMetrics) BytesRelayed(int64, int64)        {}
func (nopMetrics) RequestDone(int16, time.Duration) {}
func (nopMetrics) LocalRequest(int16, string)       {}
