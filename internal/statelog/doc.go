// Package statelog keeps the proxy's shared state (delegation tokens, SCRAM
// users written through the admin API, the phantom-login secret) in a
// compacted Kafka topic, sealed with AES-256-GCM, so that every proxy of a
// fleet holds the same state.
//
// A Log restores the topic up to the end offset it saw at start, then tails
// it and feeds every change (its own writes, read back, and other proxies')
// to the token and user caches. It implements dtoken.TokenStore and
// credstore.UserStore.
package statelog
