// Package poll runs a function at a fixed interval until a context ends.
// It is the one ticker loop shared by the credential reloader, the token
// sweeper and the certificate watcher.
package poll
