package sasl

import "errors"

// Sentinels for the three ways a SCRAM step fails on the wire (docs/protocol.md,
// "SCRAM failures").
var (
	// ErrAuthFailed covers every Kafka SaslException: the client gets
	// error 58 with a generic message (or, on the v0 path, a close).
	ErrAuthFailed = errors.New("sasl: authentication failed")
	// ErrAuthzIDMismatch is Kafka's SaslAuthenticationException for an
	// authorization id other than the username: the one failure whose own
	// message (AuthzIDMismatchMessage) reaches the client.
	ErrAuthzIDMismatch = errors.New("sasl: authorization id differs from username")
	// ErrProofLength is a client proof whose length is not the hash size.
	// Kafka's ScramFormatter.xor throws IllegalArgumentException, which is
	// not a SASL exception: the connection closes with nothing written.
	ErrProofLength = errors.New("sasl: client proof has the wrong length")
)

// AuthzIDMismatchMessage is the exact text Kafka sends with ErrAuthzIDMismatch.
const AuthzIDMismatchMessage = "Authentication failed: Client requested an authorization id that is different from username"

// AuthError is a failed step with a short, stable, log-safe reason
// ("unknown_user", "invalid_proof", ...). It never carries secrets.
type AuthError struct {
	Reason string
	Err    error // one of the sentinels
}

func (e *AuthError) Error() string { return "sasl: " + e.Reason }

// Unwrap returns the sentinel, so errors.Is(err, ErrAuthFailed) works.
func (e *AuthError) Unwrap() error { return e.Err }

// Reason returns err's log-safe reason, or "unknown".
func Reason(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return "unknown"
}

func fail(reason string) error { return &AuthError{Reason: reason, Err: ErrAuthFailed} }
