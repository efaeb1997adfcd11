// Package telemetry exports the proxy's metrics to Prometheus and serves
// the health endpoints (/metrics, /healthz, /readyz).
//
// Everything is built from injected values: its own registry, never the
// Prometheus default one, and readiness checks passed in as functions.
package telemetry
