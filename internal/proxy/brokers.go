package proxy

import (
	"context"
	"net"
	"time"

	"go.uber.org/zap"
)

// NodeSource lists the upstream brokers the proxy knows of and signals when
// that set changes. Implementations must be safe for concurrent use.
type NodeSource interface {
	Nodes() []int32
	Changes() <-chan struct{}
}

// ServeBrokers keeps one listener per known broker for port-per-broker
// routing: listen opens node's listener, whose connections all reach that
// broker. Listeners open as brokers appear and close as they leave (their
// established connections live on). It returns when ctx ends. Opening
// listeners is the proxy's decision, taken here and never while rewriting a
// response.
func (s *Server) ServeBrokers(ctx context.Context, nodes NodeSource, listen func(node int32) (net.Listener, error), resync time.Duration) {
	log := s.opts.Logger.With(zap.String(logListener, s.opts.ListenerName))
	running := map[int32]context.CancelFunc{}
	defer func() {
		for _, cancel := range running {
			cancel()
		}
	}()
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		want := map[int32]bool{}
		for _, n := range nodes.Nodes() {
			want[n] = true
			if _, ok := running[n]; ok {
				continue
			}
			ln, err := listen(n)
			if err != nil {
				log.Error("cannot open broker listener", zap.Int32("node", n), zap.Error(err))
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			running[n] = cancel
			log.Info("broker listener open", zap.Int32("node", n), zap.String("address", ln.Addr().String()))
			go func() { _ = s.ServeNode(lctx, ln, n) }()
		}
		for n, cancel := range running {
			if !want[n] {
				cancel()
				delete(running, n)
				log.Info("broker left; listener closed", zap.Int32("node", n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-nodes.Changes():
		case <-t.C:
		}
	}
}
