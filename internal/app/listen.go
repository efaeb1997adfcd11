package app

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/telemetry"
)

// listen binds the client listener and the metrics and profiling
// listeners. A check releases them at once; an address already in use there
// (by a running proxy, most likely) is a warning, since serve would find it
// free once that proxy stops.
func (a *App) listen() error {
	var errs []error
	bind := func(key, addr string, open func() error) {
		err := open()
		if a.check && errors.Is(err, syscall.EADDRINUSE) {
			a.log.Warn("not checked: "+key+" (the address is in use)", zap.String("address", addr))
			return
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	bind("listener.address", a.cfg.Listener.Address, func() (err error) {
		a.ln, err = net.Listen("tcp", a.cfg.Listener.Address)
		if err == nil && a.sharedState() {
			// Checked here, bound again once the state topic is restored:
			// until then a client is refused and tries another broker,
			// rather than waiting in the backlog for a restore that lasts
			// as long as the brokers are unreachable.
			err = a.ln.Close()
			a.ln = nil
		}
		return err
	})
	// Metrics and health on metrics.address; profiling on its own address
	// (loopback unless configured otherwise), or on the same listener when
	// both name the same fixed port.
	m := a.cfg.Metrics
	type server struct {
		key, addr string
		e         telemetry.Endpoints
		what      string
	}
	var servers []server
	if m.Address != "" {
		servers = append(servers, server{key: "metrics.address", addr: m.Address, what: "metrics and health",
			e: telemetry.Endpoints{Metrics: a.metrics.Handler(), Checks: a.readiness()}})
	}
	if m.Pprof {
		if len(servers) > 0 && m.PprofAddress == m.Address && !strings.HasSuffix(m.Address, ":0") {
			servers[0].e.Profiling, servers[0].what = true, "metrics, health and profiling"
		} else {
			servers = append(servers, server{key: "metrics.pprof_address", addr: m.PprofAddress, what: "profiling",
				e: telemetry.Endpoints{Profiling: true}})
		}
		if !loopback(m.PprofAddress) {
			a.log.Warn("metrics.pprof_address is not a loopback address: /debug/pprof/, with the command line, is served unauthenticated to the network",
				zap.String("address", m.PprofAddress))
		}
	}
	for _, s := range servers {
		bind(s.key, s.addr, func() error {
			h, err := telemetry.Listen(s.addr, s.e)
			if err == nil {
				a.health = append(a.health, httpServer{Server: h, what: s.what})
			}
			return err
		})
	}
	return errors.Join(errs...)
}

// loopback reports whether a listen address is on loopback only.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readiness is /readyz's list: the client listener serves, the upstream
// accepts a connection and, with the shared state, the topic is restored.
func (a *App) readiness() []telemetry.Check {
	checks := telemetry.Readiness(&a.serving, a.dialer, nil)
	if a.cfg.State.Shared() {
		checks = append(checks, a.stateCheck())
	}
	return checks
}
