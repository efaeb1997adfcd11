// Package credstore holds the proxy's user credentials and implements
// sasl.UserLookup over them: an immutable snapshot behind an atomic pointer,
// so logins never take a lock and a reload swaps everything at once.
//
// Snapshots come from the credentials file (file.go); they hold Kafka's
// stored SCRAM form only, never passwords.
package credstore
