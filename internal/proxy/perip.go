package proxy

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// perIP counts open connections per source address for
// MaxConnectionsPerIP (Kafka's max.connections.per.ip, checked as Kafka's
// ConnectionQuotas does, when a connection is accepted). Only addresses
// with open connections have an entry, so it holds at most MaxConnections.
type perIP struct {
	mu sync.Mutex
	n  map[netip.Addr]int

	// Refusals are logged at most once a second; the others are counted
	// into the next line.
	lastLog    time.Time
	suppressed int
}

// open counts a new connection from addr and reports whether it may stay:
// false when its address is at its limit. Addresses that are not IP
// (tests' pipes) are not limited.
func (p *perIP) open(addr net.Addr, o *Options) (netip.Addr, bool) {
	ta, isTCP := addr.(*net.TCPAddr)
	if !isTCP {
		return netip.Addr{}, true
	}
	ip := ta.AddrPort().Addr().Unmap()
	limit, override := o.ConnectionsPerIPOverrides[ip]
	if !override {
		limit = o.MaxConnectionsPerIP
	}
	if limit <= 0 && !override {
		return netip.Addr{}, true // not counted: no limit applies
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[netip.Addr]int{}
	}
	if p.n[ip] >= limit {
		return ip, false
	}
	p.n[ip]++
	return ip, true
}

// close counts a connection from ip (as open returned it) gone.
func (p *perIP) close(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip]--; p.n[ip] <= 0 {
		delete(p.n, ip)
	}
}

// refused logs a refused connection at info, at most once a second, with
// the number of refusals not logged since the last line.
func (p *perIP) refused(log *zap.Logger, ip netip.Addr, now time.Time) {
	p.mu.Lock()
	if now.Sub(p.lastLog) < time.Second {
		p.suppressed++
		p.mu.Unlock()
		return
	}
	n := p.suppressed
	p.lastLog, p.suppressed = now, 0
	p.mu.Unlock()
	log.Info("connection refused: too many connections from its address",
		zap.String(logRemote, ip.String()), zap.Int("refused_since_last_line", n))
}
