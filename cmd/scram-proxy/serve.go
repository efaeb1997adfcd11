package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scram-proxy/scram-proxy/internal/app"
	"github.com/scram-proxy/scram-proxy/internal/config"
)

// configError is a configuration that did not load, validate or build:
// every problem, each naming its key. Both serve and check-config print it
// as a list and exit 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// parseConfig parses command's configuration flags and loads the
// configuration: flag problems are usageError or errHelp, configuration
// problems configError.
func parseConfig(command string, args []string, stderr io.Writer, environ []string) (config.Config, error) {
	fs := pflag.NewFlagSet(command, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return config.Config{}, errHelp
		}
		return config.Config{}, usageError{err}
	}
	cfg, err := config.Load(fs, environ)
	if err != nil {
		return config.Config{}, configError{err}
	}
	return cfg, nil
}

// serveCommand runs the proxy until ctx ends. A configuration serve would
// refuse is exactly what check-config reports: both go through app.Build.
func serveCommand(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	cfg, err := parseConfig("serve", args, stderr, environ)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return configError{err}
	}
	defer func() { _ = log.Sync() }()
	return serve(ctx, cfg, log, nil)
}

// serve builds the process from cfg and runs it; ready, when non-nil, is
// called once the listener accepts.
func serve(ctx context.Context, cfg config.Config, log *zap.Logger, ready func()) error {
	a, err := app.Build(cfg, app.Options{Logger: log})
	if err != nil {
		return configError{err}
	}
	return a.Run(ctx, ready)
}

// newLogger builds the process logger from the log settings.
func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.Format {
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}
