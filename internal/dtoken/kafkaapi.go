package dtoken

// The Kafka APIs the proxy answers from the Manager instead of forwarding:
// CreateDelegationToken (38) v0-3, RenewDelegationToken (39) v0-2,
// ExpireDelegationToken (40) v0-2, DescribeDelegationToken (41) v0-3.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// API adapts a Manager to kmsg requests. It is safe for concurrent use.
type API struct{ M *Manager }

// Ranges lists the API keys and versions API answers: key, min, max.
func (API) Ranges() [][3]int16 {
	return [][3]int16{{38, 0, 3}, {39, 0, 2}, {40, 0, 2}, {41, 0, 3}}
}

// Handle answers one token request from an authenticated connection whose
// principal is "Type:Name". Errors are internal failures (storage); Kafka
// error codes travel in the response.
func (a API) Handle(_ context.Context, principal string, tokenAuth bool, req kmsg.Request) (kmsg.Response, error) {
	p, err := ParsePrincipal(principal)
	if err != nil {
		return nil, err
	}
	c := Caller{Principal: p, TokenAuthenticated: tokenAuth}
	switch r := req.(type) {
	case *kmsg.CreateDelegationTokenRequest:
		return a.create(c, r)
	case *kmsg.RenewDelegationTokenRequest:
		code, exp, err := a.M.Renew(c, r.HMAC, time.Duration(r.RenewTimeMillis)*time.Millisecond)
		resp := kmsg.NewPtrRenewDelegationTokenResponse()
		resp.ErrorCode, resp.ExpiryTimestamp = code, millis(code, exp)
		return resp, err
	case *kmsg.ExpireDelegationTokenRequest:
		code, exp, err := a.M.Expire(c, r.HMAC, time.Duration(r.ExpiryPeriodMillis)*time.Millisecond)
		resp := kmsg.NewPtrExpireDelegationTokenResponse()
		resp.ErrorCode, resp.ExpiryTimestamp = code, millis(code, exp)
		return resp, err
	case *kmsg.DescribeDelegationTokenRequest:
		return a.describe(c, r), nil
	}
	return nil, fmt.Errorf("dtoken: no handler for %s", kmsg.NameForKey(req.Key()))
}

// millis renders a timestamp; errors carry -1 when the broker refuses
// before the controller (64) and 0 for controller-side errors, as Kafka.
func millis(code int16, t time.Time) int64 {
	switch {
	case code == codeNotAllowed:
		return -1
	case code != 0:
		return 0
	}
	return t.UnixMilli()
}

func (a API) create(c Caller, r *kmsg.CreateDelegationTokenRequest) (kmsg.Response, error) {
	var ownerType, ownerName string
	if r.OwnerPrincipalName != nil {
		ownerName = *r.OwnerPrincipalName
	}
	if r.OwnerPrincipalType != nil {
		ownerType = *r.OwnerPrincipalType
	}
	renewers := make([]Principal, 0, len(r.Renewers))
	for _, rn := range r.Renewers {
		renewers = append(renewers, Principal{Type: rn.PrincipalType, Name: rn.PrincipalName})
	}
	out, err := a.M.Create(c, ownerType, ownerName, renewers, time.Duration(r.MaxLifetimeMillis)*time.Millisecond)
	resp := kmsg.NewPtrCreateDelegationTokenResponse()
	resp.ErrorCode = out.Code
	resp.PrincipalType, resp.PrincipalName = out.Owner.Type, out.Owner.Name
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = out.Requester.Type, out.Requester.Name
	resp.HMAC = []byte{}
	switch {
	case err != nil:
		return nil, err
	case out.Code == codeDisabled:
		// Raised by the controller in KRaft: its zero defaults come back.
	case out.Code != 0:
		resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = -1, -1, -1
	default:
		t := out.Token
		resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = t.Issue.UnixMilli(), t.Expiry.UnixMilli(), t.Max.UnixMilli()
		resp.TokenID, resp.HMAC = t.ID, out.HMAC
	}
	return resp, nil
}

func (a API) describe(c Caller, r *kmsg.DescribeDelegationTokenRequest) kmsg.Response {
	var owners []Principal
	if r.Owners != nil {
		owners = make([]Principal, 0, len(r.Owners))
		for _, o := range r.Owners {
			owners = append(owners, Principal{Type: o.PrincipalType, Name: o.PrincipalName})
		}
	}
	code, tokens := a.M.Describe(c, owners)
	resp := kmsg.NewPtrDescribeDelegationTokenResponse()
	resp.ErrorCode = code
	for _, d := range tokens {
		i := d.Info
		td := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
		td.PrincipalType, td.PrincipalName = i.Owner.Type, i.Owner.Name
		td.TokenRequesterPrincipalType, td.TokenRequesterPrincipalName = i.Requester.Type, i.Requester.Name
		td.IssueTimestamp, td.ExpiryTimestamp, td.MaxTimestamp = i.Issue.UnixMilli(), i.Expiry.UnixMilli(), i.Max.UnixMilli()
		td.TokenID, td.HMAC = i.ID, d.HMAC
		for _, rn := range i.Renewers {
			kr := kmsg.NewDescribeDelegationTokenResponseTokenDetailRenewer()
			kr.PrincipalType, kr.PrincipalName = rn.Type, rn.Name
			td.Renewers = append(td.Renewers, kr)
		}
		resp.TokenDetails = append(resp.TokenDetails, td)
	}
	return resp
}
