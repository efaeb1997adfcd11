// Package upstream connects the proxy to the brokers behind it: it dials
// upstream connections for authenticated sessions, probes and caches the
// upstream's ApiVersions, and maps upstream broker endpoints to the addresses
// clients are shown.
//
// It implements interfaces declared by the proxy package and never imports it.
package upstream
