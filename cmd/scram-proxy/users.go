package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

const usersUsage = `usage:
  scram-proxy users hash   --name NAME [--mechanism M] [--iterations N]          print a users-file line (password on stdin)
  scram-proxy users add    --file F --name NAME [--mechanism M] [--iterations N] add or replace a credential (password on stdin)
  scram-proxy users delete --file F --name NAME [--mechanism M]                  delete a user, or one of its mechanisms
  scram-proxy users list   --file F                                               list users, mechanisms and iterations`

// usersCommand edits and inspects credentials files offline. Passwords are
// read from stdin, never from arguments (shell history, ps).
func usersCommand(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(usersUsage)}
	}
	fs := pflag.NewFlagSet("users "+args[0], pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("file", "", "credentials file to edit")
	name := fs.String("name", "", "user name")
	mech := fs.String("mechanism", "", "SCRAM-SHA-512 or SCRAM-SHA-256 (hash and add default to SCRAM-SHA-512)")
	iters := fs.Int("iterations", 8192, "PBKDF2 iterations, 4096..16384")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	needFile := func() error {
		if *file == "" {
			return usageError{fmt.Errorf("users %s: --file is required", args[0])}
		}
		return nil
	}
	mechanism := func(def sasl.Mechanism) (sasl.Mechanism, error) {
		if *mech == "" {
			return def, nil
		}
		m, ok := sasl.ParseMechanism(*mech)
		if !ok {
			return "", usageError{fmt.Errorf("--mechanism must be SCRAM-SHA-512 or SCRAM-SHA-256, not %q", *mech)}
		}
		return m, nil
	}
	switch args[0] {
	case "list":
		if err := needFile(); err != nil {
			return err
		}
		list, err := credstore.ListFile(*file)
		if err != nil {
			return err
		}
		for _, s := range list {
			fmt.Fprintln(stdout, s)
		}
		return nil
	case "hash", "add", "delete":
	default:
		return usageError{fmt.Errorf("unknown users command %q\n%s", args[0], usersUsage)}
	}
	if *name == "" {
		return usageError{fmt.Errorf("users %s: --name is required", args[0])}
	}
	if args[0] == "delete" {
		if err := needFile(); err != nil {
			return err
		}
		m, err := mechanism("")
		if err != nil {
			return err
		}
		if err := credstore.EditFile(*file, func(users *yaml.Node) error { return credstore.DeleteCredential(users, *name, m) }); err != nil {
			return fmt.Errorf("users delete: %w", err)
		}
		fmt.Fprintf(stdout, "deleted %s from %s\n", *name, *file)
		return nil
	}
	m, err := mechanism(sasl.ScramSHA512)
	if err != nil {
		return err
	}
	if args[0] == "add" {
		if err := needFile(); err != nil {
			return err
		}
	}
	password, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("users %s: read password: %w", args[0], err)
	}
	password = strings.TrimRight(password, "\r\n")
	if password == "" {
		return usageError{fmt.Errorf("users %s: empty password on stdin", args[0])}
	}
	line, err := credstore.HashLine(m, password, *iters, rand.Reader)
	if err != nil {
		return usageError{fmt.Errorf("users %s: %w", args[0], err)}
	}
	if args[0] == "hash" {
		fmt.Fprintf(stdout, "users:\n  %s:\n    %s: %q\n", yamlKey(*name), m, line)
		return nil
	}
	cred, err := sasl.ParseStoredForm(m, line)
	if err != nil {
		return err
	}
	if err := credstore.EditFile(*file, func(users *yaml.Node) error {
		credstore.SetCredential(users, *name, m, cred)
		return nil
	}); err != nil {
		return fmt.Errorf("users add: %w", err)
	}
	fmt.Fprintf(stdout, "set %s %s in %s\n", *name, m, *file)
	return nil
}

// yamlKey quotes a user name when YAML would otherwise misread it.
func yamlKey(name string) string {
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Sprintf("%q", name)
		}
	}
	return name
}
