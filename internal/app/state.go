package app

// The shared state backend (state.backend kafka): the state topic is opened
// in Build, restored in Run before the token manager and the SCRAM admin
// are built from it, then tailed into them.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/proxy"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
	"github.com/scram-proxy/scram-proxy/internal/telemetry"
)

// sharedState reports whether this App keeps its state in the Kafka topic
// and builds its caches in Run, once the topic is restored. A check does
// not reach the topic: it builds them empty, as for a fresh proxy.
func (a *App) sharedState() bool { return a.cfg.State.Shared() && !a.check }

// stateKey names the configuration that holds the state, for errors.
func (a *App) stateKey() string {
	if a.cfg.State.Shared() {
		return "state.kafka.topic"
	}
	return "state.dir"
}

// loadStateKeys reads state.kafka.key_file, which a check verifies too.
func (a *App) loadStateKeys() error {
	keys, err := statelog.LoadKeyring(a.cfg.State.Kafka.KeyFile)
	if err != nil {
		return fmt.Errorf("state.kafka.key_file: %w", err)
	}
	a.stateKeys = keys
	if a.cfg.State.Dir != "" {
		a.log.Warn("state.dir is not used with state.backend kafka: the state lives in the topic (scram-proxy state copy moves a directory's state there)",
			zap.String("state_dir", a.cfg.State.Dir))
	}
	if a.check {
		a.log.Warn("not checked: the state topic (state.backend kafka); serve creates or checks it before it reports ready",
			zap.String("topic", a.cfg.State.Kafka.Topic))
	}
	return nil
}

// openStateLog builds the state topic's clients from the upstream
// connection settings; nothing is read until Run.
func (a *App) openStateLog() error {
	opts, err := a.dialer.ClientOpts()
	if err != nil {
		return fmt.Errorf("upstream.sasl: %w", err)
	}
	k := a.cfg.State.Kafka
	a.stateLog, err = statelog.Open(statelog.Options{
		Client: opts, Topic: k.Topic, Keys: a.stateKeys,
		ReplicationFactor: int16(k.ReplicationFactor), MinInsyncReplicas: k.MinInsyncReplicas,
		Logger: a.log.With(zap.String("state_topic", k.Topic)), Metrics: a.metrics,
	})
	if err != nil {
		return fmt.Errorf("state.kafka.topic: %w", err)
	}
	return nil
}

// restoreState restores the state topic (retrying while the brokers are
// unreachable), builds the token manager, the SCRAM admin and the server
// from it, and starts the tail that keeps them current. It returns
// ctx.Err() if ctx ends first.
func (a *App) restoreState(ctx, bg context.Context) error {
	err := a.stateLog.Restore(ctx, func(err error) {
		a.log.Warn("state topic not readable yet; retrying (not ready until it is restored)", zap.Error(err))
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("state.kafka.topic: %w", err)
	}
	auth, local, err := a.buildAuth(a.res.TokenKeys)
	if err != nil {
		return err
	}
	if err := a.buildServer(auth, local, a.listenerTLS, a.res.ConnectionsPerIP); err != nil {
		return err
	}
	if a.ln, err = net.Listen("tcp", a.cfg.Listener.Address); err != nil {
		return fmt.Errorf("listener.address: %w", err)
	}
	if err := a.stateLog.Start(bg, a.tokens, a.admin); err != nil {
		return err
	}
	a.stateRestored.Store(true)
	s := a.stateLog.Status()
	a.log.Info("state topic restored; following it", zap.Int64("offset", s.Offset), zap.Int("keys", s.Records),
		zap.Int("tokens", a.tokens.Len()), zap.Int("users", a.users.Users()))
	return nil
}

// stateCheck is /readyz's check of the state topic: not ready until it has
// been restored.
func (a *App) stateCheck() telemetry.Check {
	return telemetry.Check{Name: "state", Fn: func(context.Context) error {
		if !a.stateRestored.Load() {
			return errors.New("restoring the state topic")
		}
		return nil
	}}
}

// servingServer is the client server as readiness sees it: not ready until
// Run serves it (with the shared state, it is built only once the topic is
// restored).
type servingServer struct{ p atomic.Pointer[proxy.Server] }

func (s *servingServer) Ready() bool {
	srv := s.p.Load()
	return srv != nil && srv.Ready()
}
