// Package driverenv reads the client-matrix driver contract (see
// test/clients/README.md) from the environment, for the Go drivers.
package driverenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Env is one driver run's settings.
type Env struct {
	Bootstrap, User, Password, Mechanism, Topic, Group string
	Count                                              int
	Budget                                             time.Duration
	TLS                                                *tls.Config
}

// Main loads the environment, runs the driver and exits 1 with its error.
func Main(run func(Env) error) {
	env, err := Load()
	if err == nil {
		err = run(env)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Load reads the KAFKA_* variables; the CA file becomes the TLS roots.
func Load() (Env, error) {
	count, err := strconv.Atoi(os.Getenv("KAFKA_COUNT"))
	if err != nil {
		return Env{}, fmt.Errorf("KAFKA_COUNT: %w", err)
	}
	budget, err := strconv.Atoi(os.Getenv("KAFKA_TIMEOUT_SEC"))
	if err != nil {
		return Env{}, fmt.Errorf("KAFKA_TIMEOUT_SEC: %w", err)
	}
	ca, err := os.ReadFile(os.Getenv("KAFKA_CA_FILE"))
	if err != nil {
		return Env{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return Env{}, fmt.Errorf("KAFKA_CA_FILE: no certificates")
	}
	mech := os.Getenv("KAFKA_MECHANISM")
	if mech == "" {
		mech = "SCRAM-SHA-512"
	}
	return Env{
		Bootstrap: os.Getenv("KAFKA_BOOTSTRAP"), User: os.Getenv("KAFKA_USER"), Password: os.Getenv("KAFKA_PASSWORD"),
		Mechanism: mech, Topic: os.Getenv("KAFKA_TOPIC"), Group: os.Getenv("KAFKA_GROUP"),
		Count: count, Budget: time.Duration(budget) * time.Second,
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}, nil
}

// Values are the count distinct record values a driver produces.
func (e Env) Values(client string) []string {
	out := make([]string, e.Count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%s-%d", client, e.Topic, i)
	}
	return out
}

// Result prints the contract's RESULT line and fails unless both counts
// equal the requested count.
func (e Env) Result(produced, consumed int) error {
	fmt.Printf("RESULT produced=%d consumed=%d\n", produced, consumed)
	if produced != e.Count || consumed != e.Count {
		return fmt.Errorf("produced %d, consumed %d of %d", produced, consumed, e.Count)
	}
	return nil
}
