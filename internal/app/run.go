package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/proxy"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// Run starts the background work (credential and certificate reloads, the
// token sweep, broker tracking), serves clients until ctx ends, then drains
// within shutdown.timeout and releases everything. ready, when non-nil, is
// called once the listener accepts. Every goroutine Run starts has ended
// when it returns.
func (a *App) Run(ctx context.Context, ready func()) error {
	if a.check || a.closed {
		return errors.New("app: this App was built for a check or is closed; it cannot run")
	}
	defer a.Close()
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBG()
	goBG := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}

	// The health servers start first, so /readyz answers (not ready) while
	// the state topic is restored, and outlive the drain, so it says
	// "shutting down" then.
	healthCtx, stopHealth := context.WithCancel(context.Background())
	var healthWG sync.WaitGroup
	defer healthWG.Wait()
	defer stopHealth()
	for _, h := range a.health {
		a.log.Info(h.what+" listening", zap.String("address", h.Addr()))
		healthWG.Add(1)
		go func() {
			defer healthWG.Done()
			if err := h.Serve(healthCtx); err != nil {
				a.log.Error("metrics server failed", zap.Error(err))
			}
		}()
	}
	if a.sharedState() {
		// Before any client is accepted (the listener is bound once the
		// topic is restored): the caches and the server are built from it.
		if err := a.restoreState(ctx, bg); err != nil {
			if ctx.Err() != nil {
				a.log.Info("stopped before the state topic was restored")
				return nil
			}
			return err
		}
	}

	goBG(func() {
		a.tokens.Run(bg, func(n int, err error) {
			if err != nil {
				a.log.Error("delegation token sweep failed", zap.Error(err))
			} else if n > 0 {
				a.log.Info("expired delegation tokens removed", zap.Int("count", n))
			}
		})
	})
	goBG(func() { a.reloader.Run(bg) })
	for _, w := range a.watchers {
		goBG(func() { w.Run(bg, a.cfg.Credentials.ReloadInterval) })
	}
	if a.routes.TracksBrokers() {
		mp := &upstream.MetadataProbe{Dial: a.dialer, Dir: a.dir,
			OnError: func(err error) { a.log.Warn("upstream metadata probe failed", zap.Error(err)) }}
		goBG(func() { mp.Run(bg) })
	}
	if a.routes.BrokerListeners() {
		goBG(func() {
			a.srv.ServeBrokers(bg, a.dir, func(node int32) (net.Listener, error) {
				addr, err := a.routes.ListenAddr(node)
				if err != nil {
					return nil, err
				}
				return net.Listen("tcp", addr)
			}, upstream.MetadataInterval)
		})
	}
	a.log.Info("listening",
		zap.String("address", a.ln.Addr().String()),
		zap.String("advertised_address", a.cfg.AdvertisedAddress()),
		zap.Bool("tls", a.cfg.Listener.TLS.Enabled),
		zap.Strings("mechanisms", a.cfg.SASL.Mechanisms),
		zap.Strings("upstream", a.cfg.Upstream.BootstrapServers))
	a.warnSharedIdentity()
	if sec := a.dialer.Security; sec != nil && sec.Tokens != nil {
		goBG(func() { a.checkPrincipalTokens(bg, sec.Tokens) })
	}
	if a.brokerTokens != nil {
		goBG(func() { a.checkBrokerTokens(bg) })
	}
	if a.tokens.Enabled() {
		a.log.Info("delegation tokens enabled", zap.String("state_backend", a.cfg.State.Backend), zap.String("state_dir", a.cfg.State.Dir),
			zap.Int("tokens", a.tokens.Len()))
	}
	// Learn the upstream's API versions now, so the first client does not
	// wait for them; a failure is not fatal (the upstream may start later).
	goBG(func() {
		if err := a.probe.Prime(bg); err != nil && bg.Err() == nil {
			a.log.Warn("upstream not reachable yet; clients will be refused until it is", zap.Error(err))
		}
	})

	errc := make(chan error, 1)
	a.serving.p.Store(a.srv)
	go func() { errc <- a.srv.Serve(ctx, a.ln) }()
	if ready != nil {
		ready()
	}
	var serveErr error
	select {
	case err := <-errc:
		errc = nil
		if err != nil && !errors.Is(err, proxy.ErrServerClosed) && ctx.Err() == nil {
			serveErr = fmt.Errorf("serve: %w", err)
		}
	case <-ctx.Done():
	}
	a.log.Info("shutting down", zap.Duration("timeout", a.cfg.Shutdown.Timeout))
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Shutdown.Timeout)
	defer cancel()
	if err := a.srv.Shutdown(sctx); err != nil {
		a.log.Warn("shutdown timed out; connections were closed", zap.Error(err))
	}
	if errc != nil {
		<-errc // Serve returns once Shutdown has begun
	}
	a.log.Info("stopped")
	return serveErr
}
