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

	"github.com/spf13/pflag"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/state"
)

const stateUsage = `usage:
  scram-proxy state copy --from STORE --to STORE [--overwrite] [--dry-run] [--config FILE ...]

Copies the proxy's state (users written through the admin API, delegation
tokens, the phantom-login secret) from one store to another. A STORE is
  dir:PATH   a state directory (state.dir); one a running proxy holds cannot be read
  local      the configuration's state.dir (needs --config)
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

func stateCopy(_ context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := pflag.NewFlagSet("state copy", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "the store to copy from")
	to := fs.String("to", "", "the store to copy to")
	overwrite := fs.Bool("overwrite", false, "replace destination records that differ")
	dryRun := fs.Bool("dry-run", false, "report what would be written, write nothing")
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
	needConfig := func() (*config.Config, error) {
		if cfg != nil {
			return cfg, nil
		}
		if !fs.Changed("config") {
			return nil, usageError{errors.New("state copy: local names the configuration's store: give --config")}
		}
		c, err := config.Load(fs, environ)
		if err != nil {
			return nil, configError{err}
		}
		cfg = &c
		return cfg, nil
	}
	fromDir, err := storeDir(*from, needConfig)
	if err != nil {
		return err
	}
	toDir, err := storeDir(*to, needConfig)
	if err != nil {
		return err
	}
	if fromDir == toDir {
		return usageError{fmt.Errorf("state copy: --from and --to are the same store (state.dir %s)", fromDir)}
	}
	src, err := openStore(fromDir, false, stderr)
	if err != nil {
		return err
	}
	defer src.close()
	dst, err := openStore(toDir, true, stderr)
	if err != nil {
		return err
	}
	defer dst.close()
	report, err := state.Copy(src.store, dst.store, state.CopyOptions{Overwrite: *overwrite, DryRun: *dryRun})
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

// copyStore is one side of a copy.
type copyStore struct {
	name  string // for messages: "state.dir /var/lib/..."
	store state.CopyDestination
	close func()
}

// storeDir resolves a --from or --to value to a state directory.
func storeDir(spec string, cfg func() (*config.Config, error)) (string, error) {
	var dir string
	switch {
	case strings.HasPrefix(spec, "dir:"):
		if dir = strings.TrimPrefix(spec, "dir:"); dir == "" {
			return "", usageError{errors.New("state copy: dir: needs a path")}
		}
	case spec == "local":
		c, err := cfg()
		if err != nil {
			return "", err
		}
		if dir = c.State.Dir; dir == "" {
			return "", usageError{errors.New("state copy: local: the configuration sets no state.dir")}
		}
	default:
		return "", usageError{fmt.Errorf("state copy: unknown store %q (dir:PATH or local)", spec)}
	}
	return filepath.Abs(dir)
}

// openStore opens a state directory: read-only for the source (a running
// proxy's cannot be read), created if missing for the destination.
func openStore(dir string, dest bool, stderr io.Writer) (copyStore, error) {
	name := "state.dir " + dir
	o := state.Options{OnBadRecord: func(r state.BadRecord) {
		fmt.Fprintf(stderr, "scram-proxy: %s: %s %q does not load; not copied: %v\n", name, r.Kind, r.Key, r.Err)
	}}
	var db *state.DB
	var err error
	if dest {
		db, err = state.Open(dir, o)
	} else {
		// A source that does not exist is a mistake, not an empty store.
		if _, serr := os.Stat(filepath.Join(dir, "state.db")); errors.Is(serr, fs.ErrNotExist) {
			return copyStore{}, fmt.Errorf("state copy: %s holds no state.db", name)
		}
		db, err = state.Inspect(dir, o)
	}
	if err != nil {
		return copyStore{}, fmt.Errorf("state copy: %w", err)
	}
	return copyStore{name: name, store: db, close: func() { _ = db.Close() }}, nil
}
