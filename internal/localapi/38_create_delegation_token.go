package localapi

// CreateDelegationToken (key 38), versions 0-3: v2 is flexible, v3 adds the
// owner to create the token for (KIP-373).

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

func (a *APIs) createDelegationToken(c caller, r *kmsg.CreateDelegationTokenRequest) (kmsg.Response, error) {
	cl, err := tokenCaller(c)
	if err != nil {
		return nil, err
	}
	var ownerType, ownerName string
	if r.OwnerPrincipalName != nil {
		ownerName = *r.OwnerPrincipalName
	}
	if r.OwnerPrincipalType != nil {
		ownerType = *r.OwnerPrincipalType
	}
	renewers := make([]dtoken.Principal, 0, len(r.Renewers))
	for _, rn := range r.Renewers {
		renewers = append(renewers, dtoken.Principal{Type: rn.PrincipalType, Name: rn.PrincipalName})
	}
	out, err := a.tokens.Create(cl, ownerType, ownerName, renewers, millis(r.MaxLifetimeMillis))
	resp := kmsg.NewPtrCreateDelegationTokenResponse()
	resp.PrincipalType, resp.PrincipalName = out.Owner.Type, out.Owner.Name
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = out.Requester.Type, out.Requester.Name
	resp.HMAC = []byte{}
	if err != nil {
		code, ok := tokenError(err)
		if !ok {
			return nil, err
		}
		resp.ErrorCode = code
		// The broker's own refusals carry -1 timestamps. The KRaft
		// controller raises DELEGATION_TOKEN_AUTH_DISABLED, and its answer
		// keeps the zero defaults.
		if !errors.Is(err, dtoken.ErrDisabled) {
			resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = -1, -1, -1
		}
		return resp, nil
	}
	t := out.Token
	resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = t.Issue.UnixMilli(), t.Expiry.UnixMilli(), t.Max.UnixMilli()
	resp.TokenID, resp.HMAC = t.ID, out.HMAC
	return resp, nil
}
