// Package app is scram-proxy's composition root: it builds the whole process
// from a config.Config (state store, credentials, tokens, TLS, upstream
// dialer and routing, the proxy server, listeners, metrics) and runs it.
//
// `serve` and `check-config` both call Build, so whatever serve would refuse
// at start, check-config reports, each problem naming its key.
package app
