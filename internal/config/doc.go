// Package config owns scram-proxy's typed configuration: its keys and
// defaults, loading with one precedence rule (flags > environment > file >
// defaults), and validation that names every offending key.
//
// Only cmd/scram-proxy imports it; other packages take their own Options.
package config
