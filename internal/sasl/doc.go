// Package sasl is the broker side of Kafka's SASL/SCRAM authentication: the
// mechanisms, the stored credential form, and a SCRAM server that behaves
// byte for byte like Kafka's ScramSaslServer.
//
// It performs no I/O and no logging: callers feed it client messages and map
// the errors it returns onto the Kafka wire (see errors.go for the taxonomy).
package sasl
