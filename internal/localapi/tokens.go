package localapi

// Helpers the delegation token handlers share.

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

// tokenCaller is the caller as the token manager sees it.
func tokenCaller(c caller) (dtoken.Caller, error) {
	p, err := dtoken.ParsePrincipal(c.principal)
	if err != nil {
		return dtoken.Caller{}, err
	}
	return dtoken.Caller{Principal: p, TokenAuthenticated: c.tokenAuth}, nil
}

// tokenDetail is one token of a DescribeDelegationToken answer, with its
// HMAC (the token's password), whichever store holds it.
func tokenDetail(i dtoken.Info, hmac []byte) kmsg.DescribeDelegationTokenResponseTokenDetail {
	td := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
	td.PrincipalType, td.PrincipalName = i.Owner.Type, i.Owner.Name
	td.TokenRequesterPrincipalType, td.TokenRequesterPrincipalName = i.Requester.Type, i.Requester.Name
	td.IssueTimestamp, td.ExpiryTimestamp, td.MaxTimestamp = i.Issue.UnixMilli(), i.Expiry.UnixMilli(), i.Max.UnixMilli()
	td.TokenID, td.HMAC = i.ID, hmac
	for _, rn := range i.Renewers {
		kr := kmsg.NewDescribeDelegationTokenResponseTokenDetailRenewer()
		kr.PrincipalType, kr.PrincipalName = rn.Type, rn.Name
		td.Renewers = append(td.Renewers, kr)
	}
	return td
}

// millis is a request's millisecond duration.
func millis(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// setExpiry runs change (the token manager's Renew or Expire) for the
// token with hmac and returns the error code and expiry timestamp of the
// answer. As in Kafka, a refusal by the broker itself
// (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED) carries -1 and one by the
// controller 0. failed is an error the request cannot be answered with.
func (a *APIs) setExpiry(c caller, change func(*dtoken.Manager, dtoken.Caller, []byte, time.Duration) (time.Time, error),
	hmac []byte, periodMillis int64) (code int16, timestamp int64, failed error) {
	cl, err := tokenCaller(c)
	if err != nil {
		return 0, 0, err
	}
	expiry, err := change(a.tokens, cl, hmac, millis(periodMillis))
	if err == nil {
		return 0, expiry.UnixMilli(), nil
	}
	code, ok := tokenError(err)
	switch {
	case !ok:
		return 0, 0, err
	case errors.Is(err, dtoken.ErrRequestNotAllowed):
		return code, -1, nil
	}
	return code, 0, nil
}
