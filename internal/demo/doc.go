// Package demo starts an in-process franz-go kfake cluster to stand in for
// the upstream brokers, so `scram-proxy demo` shows the proxy working with no
// Kafka installed.
//
// It also writes the development CA, the proxy's certificate and a demo
// user's credentials file, and renders client settings that work as printed.
package demo
