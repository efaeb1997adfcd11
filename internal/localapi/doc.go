// Package localapi answers the Kafka APIs the proxy implements itself on
// authenticated connections instead of forwarding them: the delegation token
// APIs over dtoken and the SCRAM admin APIs over credstore.
//
// table.go lists each API with the versions answered; there is one handler
// file per API key. errors.go is the one place where the refusals of dtoken
// and credstore become Kafka error codes and messages.
package localapi
