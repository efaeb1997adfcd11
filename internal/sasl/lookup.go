package sasl

import (
	"context"
	"errors"
	"time"
)

// ErrUnknownCredential is returned by lookups when no credential exists for
// the (mechanism, name) asked for. Any other lookup error is treated as
// "credentials could not be obtained"; both fail the login generically.
var ErrUnknownCredential = errors.New("no credential")

// UserLookup finds a user's stored credential. Implementations must be safe
// for concurrent use and must not retain ctx. The returned Credential must not
// be modified by the caller.
type UserLookup interface {
	LookupUser(ctx context.Context, m Mechanism, username string) (Credential, error)
}

// TokenCredential is the SCRAM credential of a delegation token plus what a
// token login needs: the owner's name (the principal type is discarded, as in
// Kafka's ScramServerCallbackHandler) and the token's expiry at lookup time.
type TokenCredential struct {
	Credential Credential
	OwnerName  string
	Expiry     time.Time
	MaxExpiry  time.Time

	_ struct{}
}

// TokenLookup finds the SCRAM credential of a delegation token by token id,
// for logins that carry the tokenauth=true extension. Implementations must be
// safe for concurrent use.
type TokenLookup interface {
	LookupToken(ctx context.Context, m Mechanism, tokenID string) (TokenCredential, error)
}

// UserLookupFunc adapts a function to UserLookup.
type UserLookupFunc func(ctx context.Context, m Mechanism, username string) (Credential, error)

// LookupUser calls f.
func (f UserLookupFunc) LookupUser(ctx context.Context, m Mechanism, username string) (Credential, error) {
	return f(ctx, m, username)
}
