// Package tlsutil builds the proxy's TLS configurations and generates
// throwaway certificate authorities for the demo and the tests.
//
// Generated material is for development only; production certificates come
// from files named in the configuration.
package tlsutil
