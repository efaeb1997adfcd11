package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/scram-proxy/scram-proxy/internal/app"
	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/state"
)

const stateUsage = `usage:
  scram-proxy state copy --from STORE --to STORE [--overwrite] [--dry-run] [--timeout D] [--config FILE ...]

Copies the proxy's state (users written through the admin API, delegation
tokens, the phantom-login secret) from one store to another. A STORE is
  dir:PATH   a state directory (state.dir); one a running proxy holds cannot be read
  local      the configuration's state.dir
  kafka      the configuration's state topic (state.kafka.*: topic, key_file, ...),
             reached with its upstream.* settings, whatever state.backend says
local and kafka need --config (and take the other configuration flags).
Only records missing from the destination are written (and, with
--overwrite, records that differ); running it again writes nothing. A
record that differs in the destination stops the copy before anything is
written, unless --overwrite. Records only the destination has are kept.`

// stateCommand runs the state subcommands.
func stateCommand(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 || args[0] != "copy" {
		return usageError{errors.New(stateUsage)}
	}
	return stateCopy(ctx, args[1:], stdout, stderr, environ)
}

func stateCopy(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := pflag.NewFlagSet("state copy", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "the store to copy from")
	to := fs.String("to", "", "the store to copy to")
	overwrite := fs.Bool("overwrite", false, "replace destination records that differ")
	dryRun := fs.Bool("dry-run", false, "report what would be written, write nothing")
	timeout := fs.Duration("timeout", time.Minute, "how long to keep trying to read the state topic")
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(stdout, stateUsage)
			return errHelp
		}
		return usageError{err}
	}
	if *from == "" || *to == "" {
		return usageError{errors.New("state copy: --from and --to are required")}
	}
	var cfg *config.Config
	loadConfig := func(spec string) (*config.Config, error) {
		if cfg != nil {
			return cfg, nil
		}
		if !fs.Changed("config") {
			return nil, usageError{fmt.Errorf("state copy: %s names the configuration's store: give --config", spec)}
		}
		c, err := config.Load(fs, environ)
		if err != nil {
			return nil, configError{err}
		}
		cfg = &c
		return cfg, nil
	}
	src, err := resolveStore(*from, loadConfig)
	if err != nil {
		return err
	}
	dst, err := resolveStore(*to, loadConfig)
	if err != nil {
		return err
	}
	if src.name == dst.name {
		return usageError{fmt.Errorf("state copy: --from and --to are the same store (%s)", src.name)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	srcStore, closeSrc, err := src.open(ctx, false, stderr)
	if err != nil {
		return err
	}
	defer closeSrc()
	dstStore, closeDst, err := dst.open(ctx, true, stderr)
	if err != nil {
		return err
	}
	defer closeDst()
	report, err := state.Copy(srcStore, dstStore, state.CopyOptions{Overwrite: *overwrite, DryRun: *dryRun})
	what := "copied"
	if *dryRun {
		what = "would copy"
	}
	fmt.Fprintf(stdout, "%s %s to %s:\n%s", what, src.name, dst.name, report)
	switch {
	case errors.Is(err, state.ErrCopyConflicts):
		return fmt.Errorf("state copy: %w; nothing was written (--overwrite replaces them)", err)
	case err != nil:
		return fmt.Errorf("state copy: %w", err)
	}
	return nil
}

// storeSpec is a resolved --from or --to: its name for messages ("state.dir
// /var/lib/...", "state topic __scram_proxy_state") and how to open it.
type storeSpec struct {
	name string
	dir  string         // a state directory
	cfg  *config.Config // the state topic of this configuration, when dir is ""
}

// resolveStore resolves a --from or --to value.
func resolveStore(spec string, loadConfig func(string) (*config.Config, error)) (storeSpec, error) {
	var dir string
	switch {
	case strings.HasPrefix(spec, "dir:"):
		if dir = strings.TrimPrefix(spec, "dir:"); dir == "" {
			return storeSpec{}, usageError{errors.New("state copy: dir: needs a path")}
		}
	case spec == "local":
		c, err := loadConfig(spec)
		if err != nil {
			return storeSpec{}, err
		}
		if dir = c.State.Dir; dir == "" {
			return storeSpec{}, usageError{errors.New("state copy: local: the configuration sets no state.dir")}
		}
	case spec == "kafka":
		c, err := loadConfig(spec)
		if err != nil {
			return storeSpec{}, err
		}
		if c.State.Kafka.KeyFile == "" {
			return storeSpec{}, usageError{errors.New("state copy: kafka: the configuration sets no state.kafka.key_file")}
		}
		return storeSpec{name: "state topic " + c.State.Kafka.Topic, cfg: c}, nil
	default:
		return storeSpec{}, usageError{fmt.Errorf("state copy: unknown store %q (dir:PATH, local or kafka)", spec)}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return storeSpec{}, err
	}
	return storeSpec{name: "state.dir " + abs, dir: abs}, nil
}

// open opens the store: a state directory read-only as the source (a
// running proxy's cannot be read) and created if missing as the
// destination; the state topic restored to its end (created if missing,
// as a proxy would), retrying until ctx ends while the brokers are
// unreachable.
func (s storeSpec) open(ctx context.Context, dest bool, stderr io.Writer) (state.CopyDestination, func(), error) {
	if s.dir == "" {
		log, err := newLogger(config.Log{Level: "warn", Format: "console"}, stderr)
		if err != nil {
			return nil, nil, err
		}
		topic, err := app.OpenStateTopic(ctx, *s.cfg, log)
		if err != nil {
			return nil, nil, fmt.Errorf("state copy: %s: %w", s.name, err)
		}
		return topic, topic.Close, nil
	}
	o := state.Options{OnBadRecord: func(r state.BadRecord) {
		fmt.Fprintf(stderr, "scram-proxy: %s: %s %q does not load; not copied: %v\n", s.name, r.Kind, r.Key, r.Err)
	}}
	var db *state.DB
	var err error
	if dest {
		db, err = state.Open(s.dir, o)
	} else {
		// A source that does not exist is a mistake, not an empty store.
		if _, serr := os.Stat(filepath.Join(s.dir, "state.db")); errors.Is(serr, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("state copy: %s holds no state.db", s.name)
		}
		db, err = state.Inspect(s.dir, o)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("state copy: %w", err)
	}
	return db, func() { _ = db.Close() }, nil
}
