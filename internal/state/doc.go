// Package state is the proxy's embedded, transactional state store: a bbolt
// database under state.dir, fsynced on every commit, holding delegation
// token metadata (never HMACs or passwords), SCRAM users written through the
// admin API (stored keys only), and the proxy's own stable secrets.
//
// It implements dtoken.TokenStore and credstore.UserStore.
package state
