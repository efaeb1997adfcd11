package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
	"github.com/scram-proxy/scram-proxy/internal/telemetry"
)

// OpenStateTopic opens the state topic cfg names (state.kafka.*, reached
// with the upstream.* connection settings, whatever state.backend says)
// and restores it to its end, as a proxy does before it reports ready: the
// topic is created if missing, and a topic with the wrong settings is an
// error. While the brokers are unreachable it retries, logging each try,
// until ctx ends. For `scram-proxy state copy`; the caller closes the Log.
func OpenStateTopic(ctx context.Context, cfg config.Config, log *zap.Logger) (*statelog.Log, error) {
	if log == nil {
		log = zap.NewNop()
	}
	res, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, metrics: telemetry.NewProm()}
	if err := a.buildUpstream(res); err != nil {
		return nil, err
	}
	if a.stateKeys, err = statelog.LoadKeyring(cfg.State.Kafka.KeyFile); err != nil {
		return nil, fmt.Errorf("state.kafka.key_file: %w", err)
	}
	if err := a.openStateLog(); err != nil {
		return nil, err
	}
	err = a.stateLog.Restore(ctx, func(err error) {
		log.Warn("state topic not readable yet; retrying", zap.Error(err))
	})
	if err != nil {
		a.stateLog.Close()
		return nil, fmt.Errorf("state.kafka.topic: %w", err)
	}
	return a.stateLog, nil
}
