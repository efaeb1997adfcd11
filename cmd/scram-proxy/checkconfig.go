package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/scram-proxy/scram-proxy/internal/app"
	"github.com/scram-proxy/scram-proxy/internal/config"
)

// checkConfigCommand builds everything `serve` would from the configuration
// (app.Build in check mode: nothing on disk changes, listeners are bound
// and released) and prints the verdict on stdout: "configuration OK", or
// every problem, each naming its key. Warnings (an address or state database
// a running proxy holds, credential warnings) follow on stderr. Exit 0:
// serve would start; 2: problems.
func checkConfigCommand(_ context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	var warnings bytes.Buffer
	defer func() { _, _ = warnings.WriteTo(stderr) }()
	err := checkConfig(args, stdout, stderr, &warnings, environ)
	var ce configError
	if errors.As(err, &ce) {
		printProblems(stdout, ce)
		return reportedError{}
	}
	return err
}

func checkConfig(args []string, stdout, stderr, warnings io.Writer, environ []string) error {
	cfg, err := parseConfig("check-config", args, stderr, environ)
	if err != nil {
		return err
	}
	log, err := newLogger(config.Log{Level: "warn", Format: "console"}, warnings)
	if err != nil {
		return err
	}
	a, err := app.Build(cfg, app.Options{Logger: log, Check: true})
	if err != nil {
		return configError{err}
	}
	fmt.Fprintf(stdout, "configuration OK: %s\n", a.Summary())
	return nil
}

// printProblems prints every problem of a configuration, one per line.
func printProblems(w io.Writer, err error) {
	fmt.Fprintln(w, "configuration has problems:")
	for _, e := range flatten(err) {
		fmt.Fprintln(w, "  - "+e.Error())
	}
}

// flatten splits joined errors (errors.Join) into their parts; an error
// that wraps a join keeps its context and stays whole.
func flatten(err error) []error {
	switch e := err.(type) {
	case configError:
		return flatten(e.err)
	case interface{ Unwrap() []error }:
		var out []error
		for _, p := range e.Unwrap() {
			out = append(out, flatten(p)...)
		}
		return out
	default:
		return []error{err}
	}
}
