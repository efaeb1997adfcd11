package proxy

// Metrics receives the proxy's counters. Implementations must be safe for
// concurrent use and keep label cardinality bounded: the string arguments are
// always from small fixed sets (listener names, mechanisms, outcomes, close
// reasons), never principals or client ids.
type Metrics interface {
	ConnectionOpened(listener string)
	ConnectionClosed(listener, reason string)
	Login(mechanism, outcome string)
	UpstreamDialFailed()
	BytesRelayed(fromClient, toClient int64)
}

type nopMetrics struct{}

// NopMetrics returns a Metrics that records nothing.
func NopMetrics() Metrics { return nopMetrics{} }

func (nopMetrics) ConnectionOpened(string)         {}
func (nopMetrics) ConnectionClosed(string, string) {}
func (nopMetrics) Login(string, string)            {}
func (nopMetrics) UpstreamDialFailed()             {}
func (nopMetrics) BytesRelayed(int64, int64)       {}
