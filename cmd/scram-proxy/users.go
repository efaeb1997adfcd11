package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// usersCommand implements `scram-proxy users hash`: read a password from
// stdin and print the credentials-file line holding only its stored keys.
func usersCommand(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "hash" {
		return usageError{errors.New("usage: scram-proxy users hash --name NAME [--mechanism SCRAM-SHA-512] [--iterations 8192]")}
	}
	fs := pflag.NewFlagSet("users hash", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "user name (required)")
	mech := fs.String("mechanism", string(sasl.ScramSHA512), "SCRAM-SHA-512 or SCRAM-SHA-256")
	iters := fs.Int("iterations", 8192, "PBKDF2 iterations, 4096..16384")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	if *name == "" {
		return usageError{errors.New("users hash: --name is required")}
	}
	m, ok := sasl.ParseMechanism(*mech)
	if !ok {
		return usageError{fmt.Errorf("users hash: --mechanism must be SCRAM-SHA-512 or SCRAM-SHA-256, not %q", *mech)}
	}
	password, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("users hash: read password: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")
	if password == "" {
		return usageError{errors.New("users hash: empty password on stdin")}
	}
	line, err := credstore.HashLine(m, password, *iters, rand.Reader)
	if err != nil {
		return usageError{fmt.Errorf("users hash: %w", err)}
	}
	fmt.Fprintf(stdout, "users:\n  %s:\n    %s: %q\n", yamlKey(*name), m, line)
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
