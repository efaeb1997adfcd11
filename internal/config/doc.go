// Package config owns scram-proxy's typed configuration: its keys and
// defaults, loading with one precedence rule (flags > environment > file >
// defaults), and validation that names every offending key.
//
// It also resolves what the configuration names indirectly (secret files,
// node-id maps, the token-key precedence) and renders a Config back to a
// file (Marshal). Only cmd/scram-proxy and the composition root
// (internal/app) import it; other packages take their own Options.
package config
