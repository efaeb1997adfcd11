package sasl

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// Mechanism is a SASL mechanism name exactly as it appears on the wire in
// SaslHandshake (case-sensitive, as Kafka matches it).
type Mechanism string

// The SCRAM mechanisms Kafka implements (KIP-84). Their type bytes in the
// SCRAM admin APIs are 1 and 2 respectively.
const (
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// Iteration bounds Kafka applies: MinIterations at login (stored credentials
// below it fail) and both when credentials are written (ScramMechanism.java).
const (
	MinIterations = 4096
	MaxIterations = 16384
)

// Mechanisms lists every mechanism this package implements, in a stable order.
func Mechanisms() []Mechanism { return []Mechanism{ScramSHA256, ScramSHA512} }

// NumMechanisms is len(Mechanisms()): the size of a table with a slot per
// mechanism (Mechanism.Index).
const NumMechanisms = 2

// Index is m's place in Mechanisms(), for a table with a slot per
// mechanism; false for a mechanism this package does not implement.
func (m Mechanism) Index() (int, bool) {
	switch m {
	case ScramSHA256:
		return 0, true
	case ScramSHA512:
		return 1, true
	}
	return 0, false
}

// ParseMechanism returns the mechanism named s. The match is exact and
// case-sensitive, as Kafka's SaslHandshake lookup is.
func ParseMechanism(s string) (Mechanism, bool) {
	switch Mechanism(s) {
	case ScramSHA256, ScramSHA512:
		return Mechanism(s), true
	}
	return "", false
}

// MechanismForType maps the admin-API type byte (1, 2) to a mechanism.
func MechanismForType(b int8) (Mechanism, bool) {
	switch b {
	case 1:
		return ScramSHA256, true
	case 2:
		return ScramSHA512, true
	}
	return "", false
}

// TypeByte is the mechanism's byte in DescribeUserScramCredentials and
// AlterUserScramCredentials (0 means unknown).
func (m Mechanism) TypeByte() int8 {
	switch m {
	case ScramSHA256:
		return 1
	case ScramSHA512:
		return 2
	}
	return 0
}

// HashSize is the digest length in bytes; a client proof of any other length
// makes Kafka close the connection without a response.
func (m Mechanism) HashSize() int {
	switch m {
	case ScramSHA256:
		return sha256.Size
	case ScramSHA512:
		return sha512.Size
	}
	return 0
}

// newHash returns the hash constructor, or nil for an unknown mechanism.
func (m Mechanism) newHash() func() hash.Hash {
	switch m {
	case ScramSHA256:
		return sha256.New
	case ScramSHA512:
		return sha512.New
	}
	return nil
}
