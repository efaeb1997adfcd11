package localapi

// The one place where dtoken's and credstore's errors become Kafka error
// codes and messages.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
)

// tokenError maps a refusal of the token manager to its Kafka error code.
// ok is false for any other error: a storage failure, which the request
// cannot be answered with. The token APIs carry no error message.
func tokenError(err error) (code int16, ok bool) {
	for _, m := range [...]struct {
		err  error
		kerr *kerr.Error
	}{
		{dtoken.ErrDisabled, kerr.DelegationTokenAuthDisabled},
		{dtoken.ErrNotFound, kerr.DelegationTokenNotFound},
		{dtoken.ErrOwnerMismatch, kerr.DelegationTokenOwnerMismatch},
		{dtoken.ErrRequestNotAllowed, kerr.DelegationTokenRequestNotAllowed},
		{dtoken.ErrUnauthorized, kerr.DelegationTokenAuthorizationFailed},
		{dtoken.ErrExpired, kerr.DelegationTokenExpired},
		{dtoken.ErrInvalidPrincipalType, kerr.InvalidPrincipalType},
		{dtoken.ErrTooManyTokens, kerr.PolicyViolation},
		// The shared state topic did not take the write in time: Kafka's
		// retriable answer to a metadata write the controller could not
		// complete in time. It may still apply later, as a timed-out
		// write to Kafka's own metadata log may.
		{statelog.ErrUnavailable, kerr.RequestTimedOut},
	} {
		if errors.Is(err, m.err) {
			return m.kerr.Code, true
		}
	}
	return 0, false
}

// userError is the error code and message of one user's result in a SCRAM
// admin answer: none without an error, else scramError's.
func userError(key int16, user string, err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	code, message := scramError(key, user, err)
	return code, &message
}

// scramError maps the error of one user's part of a SCRAM admin request
// (API key) to the Kafka error code and message that user's result
// carries. The messages are the KRaft broker's (ScramControlManager,
// ScramImage.describe) except the read-only refusal, which Kafka has no
// counterpart for. Any other error is UNKNOWN_SERVER_ERROR with the error's
// text, as Kafka's ApiError.fromThrowable answers an unexpected exception.
func scramError(key int16, user string, err error) (code int16, message string) {
	describe := key == protocol.KeyDescribeUserSCRAMCredentials
	var readOnly *credstore.ReadOnlyError
	var invalid *credstore.InvalidCredentialError
	switch {
	case errors.Is(err, credstore.ErrNotSuperUser):
		return kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Description
	case errors.Is(err, credstore.ErrDuplicateUser) && describe:
		return kerr.DuplicateResource.Code, "Cannot describe SCRAM credentials for the same user twice in a single request: " + user
	case errors.Is(err, credstore.ErrDuplicateUser):
		return kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request"
	case errors.Is(err, credstore.ErrNoCredential) && describe:
		return kerr.ResourceNotFound.Code, "Attempt to describe a user credential that does not exist: " + user
	case errors.Is(err, credstore.ErrNoCredential):
		return kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist"
	case errors.Is(err, credstore.ErrEmptyUser):
		return kerr.UnacceptableCredential.Code, "Username must not be empty"
	case errors.As(err, &readOnly):
		return kerr.UnacceptableCredential.Code, "User " + readOnly.User + " is defined in " + readOnly.Source.String() + " and is read-only to the admin API"
	case errors.Is(err, credstore.ErrUnknownMechanism):
		return kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism"
	case errors.Is(err, credstore.ErrTooFewIterations):
		return kerr.UnacceptableCredential.Code, "Too few iterations"
	case errors.Is(err, credstore.ErrTooManyIterations):
		return kerr.UnacceptableCredential.Code, "Too many iterations"
	case errors.As(err, &invalid):
		return kerr.UnacceptableCredential.Code, invalid.Err.Error()
	}
	return kerr.UnknownServerError.Code, err.Error()
}

// unavailable reports a write the shared state topic did not take in time
// (statelog.ErrUnavailable): answered with REQUEST_TIMED_OUT, retriable.
func unavailable(err error) (code int16, message string, ok bool) {
	if !errors.Is(err, statelog.ErrUnavailable) {
		return 0, "", false
	}
	return kerr.RequestTimedOut.Code, "The state topic did not take the change in time; it may still apply. Retry.", true
}
