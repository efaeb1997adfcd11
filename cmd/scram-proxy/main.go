// Command scram-proxy is a Kafka SASL_SSL SCRAM authentication proxy.
//
// main only parses arguments, builds dependencies, handles signals and maps
// errors to exit codes; every decision lives under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the proxy failed while running
	exitUsage   = 2 // bad arguments or configuration
)

// reportedError: the command already printed its problems; exit 2.
type reportedError struct{}

func (reportedError) Error() string { return "reported" }

// usageError marks errors that are the caller's to fix.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

const usageText = `scram-proxy: a Kafka SASL_SSL SCRAM-SHA-512/256 authentication proxy

Usage:
  scram-proxy [serve] --config FILE [--<key> VALUE ...]   run the proxy
  scram-proxy check-config --config FILE                  validate a configuration, print every problem
  scram-proxy demo [--listen ADDR] [--dir DIR]             run against an in-process demo cluster
  scram-proxy users hash|add|delete|list [...]            manage credentials files offline (passwords on stdin)
  scram-proxy state copy --from STORE --to STORE [...]     copy users, tokens and secrets between state stores

Run 'scram-proxy serve --help' for every configuration key.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	cmd, rest := "serve", args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCommand(ctx, rest, stderr, environ)
	case "demo":
		err = demoCommand(ctx, rest, stdout, stderr)
	case "users":
		err = usersCommand(rest, stdin, stdout)
	case "check-config":
		err = checkConfigCommand(ctx, rest, stdout, stderr, environ)
	case "state":
		err = stateCommand(ctx, rest, stdout, stderr, environ)
	case "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		err = usageError{fmt.Errorf("unknown command %q", cmd)}
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, new(reportedError)):
		return exitUsage
	case errors.As(err, new(configError)):
		fmt.Fprint(stderr, "scram-proxy: ")
		printProblems(stderr, err)
		return exitUsage
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "scram-proxy: %v\n\n%s", err, usageText)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "scram-proxy: %v\n", err)
		return exitFailure
	}
}

// errHelp is returned when --help was asked for and printed.
var errHelp = errors.New("help requested")
