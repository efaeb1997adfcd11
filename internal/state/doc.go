// Package state is the proxy's embedded, transactional state store: a bbolt
// database under state.dir, fsynced on every commit, holding delegation
// token metadata (never HMACs or passwords).
//
// It implements dtoken.TokenStore; other persistent state can take buckets
// of its own.
package state
