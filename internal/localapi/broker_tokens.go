package localapi

// The delegation token APIs (keys 38-41) with delegation_tokens.store
// broker: the tokens are the brokers', and the proxy's own upstream identity
// performs each request there on the caller's behalf. A broker refuses
// token requests on a connection authenticated by a token, and the proxy
// never holds a user's password, so it cannot act as the caller; instead
// it applies Kafka's rules to the caller itself, in Kafka's order, before
// acting:
//
//   - a caller logged in with a token may not manage tokens
//     (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED);
//   - a token owned by another principal needs a super user
//     (authorization.super_users; DELEGATION_TOKEN_AUTHORIZATION_FAILED);
//   - renew and expire need the token's owner or a renewer
//     (DELEGATION_TOKEN_OWNER_MISMATCH), judged from the brokers' own
//     description of the token;
//   - describe lists what the caller owns, renews or requested, or every
//     token for a super user.
//
// The proxy names itself renewer of every token it creates, so that it can
// renew and expire them later; its principal never appears in an answer.

import (
	"context"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
)

// brokerTokens answers the token APIs from the brokers' tokens.
type brokerTokens struct {
	b     *upstream.BrokerTokens
	super map[dtoken.Principal]bool
}

// WithBrokerTokens returns a copy of a whose token APIs act on the brokers'
// tokens through b; superUsers ("User:admin") may create tokens for others
// and describe every token.
func (a *APIs) WithBrokerTokens(b *upstream.BrokerTokens, superUsers []string) *APIs {
	bt := &brokerTokens{b: b, super: map[dtoken.Principal]bool{}}
	for _, s := range superUsers {
		if p, err := dtoken.ParsePrincipal(s); err == nil { // validated by config
			bt.super[p] = true
		}
	}
	out := *a
	out.broker = bt
	return &out
}

// handle answers req when it is a token API; ok is false for any other.
func (bt *brokerTokens) handle(ctx context.Context, c caller, req kmsg.Request) (resp kmsg.Response, ok bool, err error) {
	switch req.Key() {
	case protocol.KeyCreateDelegationToken, protocol.KeyRenewDelegationToken,
		protocol.KeyExpireDelegationToken, protocol.KeyDescribeDelegationToken:
	default:
		return nil, false, nil
	}
	cl, err := tokenCaller(c)
	if err != nil {
		return nil, true, err
	}
	switch r := req.(type) {
	case *kmsg.CreateDelegationTokenRequest:
		return bt.create(ctx, cl, r), true, nil
	case *kmsg.RenewDelegationTokenRequest:
		resp := kmsg.NewPtrRenewDelegationTokenResponse()
		resp.ErrorCode, resp.ExpiryTimestamp = bt.change(ctx, cl, r.HMAC, true, func(ctx context.Context) (int16, int64, error) {
			return bt.b.Renew(ctx, r.HMAC, r.RenewTimeMillis)
		})
		return resp, true, nil
	case *kmsg.ExpireDelegationTokenRequest:
		resp := kmsg.NewPtrExpireDelegationTokenResponse()
		resp.ErrorCode, resp.ExpiryTimestamp = bt.change(ctx, cl, r.HMAC, false, func(ctx context.Context) (int16, int64, error) {
			return bt.b.Expire(ctx, r.HMAC, r.ExpiryPeriodMillis)
		})
		return resp, true, nil
	case *kmsg.DescribeDelegationTokenRequest:
		return bt.describe(ctx, cl, r), true, nil
	}
	return nil, true, errors.New("localapi: token request of an unexpected type")
}

// unreachable is the code of a token request the proxy could not perform
// at the brokers (they did not answer): REQUEST_TIMED_OUT, which clients
// retry. A broker's own error code is passed on as it is.
func unreachable(err error) int16 {
	var be *upstream.BrokerTokensError
	if errors.As(err, &be) {
		return be.Code
	}
	return kerr.RequestTimedOut.Code
}

func (bt *brokerTokens) create(ctx context.Context, c dtoken.Caller, r *kmsg.CreateDelegationTokenRequest) kmsg.Response {
	owner := c.Principal
	if r.OwnerPrincipalName != nil && *r.OwnerPrincipalName != "" {
		owner = dtoken.Principal{Type: "User", Name: *r.OwnerPrincipalName}
		if r.OwnerPrincipalType != nil && *r.OwnerPrincipalType != "" {
			owner.Type = *r.OwnerPrincipalType
		}
	}
	resp := kmsg.NewPtrCreateDelegationTokenResponse()
	resp.PrincipalType, resp.PrincipalName = owner.Type, owner.Name
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = c.Principal.Type, c.Principal.Name
	resp.HMAC = []byte{}
	refuse := func(e *kerr.Error) kmsg.Response {
		resp.ErrorCode = e.Code
		resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = -1, -1, -1
		return resp
	}
	renewers := make([]dtoken.Principal, 0, len(r.Renewers))
	allUsers := true
	for _, rn := range r.Renewers {
		renewers = append(renewers, dtoken.Principal{Type: rn.PrincipalType, Name: rn.PrincipalName})
		allUsers = allUsers && rn.PrincipalType == "User"
	}
	switch {
	case c.TokenAuthenticated:
		return refuse(kerr.DelegationTokenRequestNotAllowed)
	case owner != c.Principal && !bt.super[c.Principal], owner == bt.b.Self():
		// The proxy's own principal owns no client's token.
		return refuse(kerr.DelegationTokenAuthorizationFailed)
	case !allUsers:
		return refuse(kerr.InvalidPrincipalType)
	}
	br, err := bt.b.Create(ctx, c.Principal, owner, renewers, r.MaxLifetimeMillis)
	if err != nil {
		return refuse(&kerr.Error{Code: unreachable(err)})
	}
	resp.ErrorCode = br.ErrorCode
	resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = br.IssueTimestamp, br.ExpiryTimestamp, br.MaxTimestamp
	if br.ErrorCode == 0 {
		resp.TokenID, resp.HMAC = br.TokenID, br.HMAC
	}
	return resp
}

// change runs renew (renewal true) or expire for the token with mac after
// the checks Kafka makes first: the caller did not log in with a token
// (-1 timestamp), the token exists, for a renewal it has not expired, and
// the caller owns or may renew it. The brokers judge the rest.
func (bt *brokerTokens) change(ctx context.Context, c dtoken.Caller, mac []byte, renewal bool,
	act func(context.Context) (int16, int64, error)) (code int16, timestamp int64) {
	if c.TokenAuthenticated {
		return kerr.DelegationTokenRequestNotAllowed.Code, -1
	}
	t, err := bt.b.ByHMAC(ctx, mac)
	var be *upstream.BrokerTokensError
	switch {
	case errors.As(err, &be):
		return be.Code, 0 // the controller's refusal (e.g. 61): timestamp 0
	case err != nil:
		return unreachable(err), -1
	case t == nil:
		return kerr.DelegationTokenNotFound.Code, 0
	case renewal && t.Expired(bt.b.Now()):
		return kerr.DelegationTokenExpired.Code, 0
	case !t.OwnerOrRenewer(c.Principal):
		return kerr.DelegationTokenOwnerMismatch.Code, 0
	}
	code, timestamp, err = act(ctx)
	if err != nil {
		return unreachable(err), -1
	}
	return code, timestamp
}

func (bt *brokerTokens) describe(ctx context.Context, c dtoken.Caller, r *kmsg.DescribeDelegationTokenRequest) kmsg.Response {
	resp := kmsg.NewPtrDescribeDelegationTokenResponse()
	if c.TokenAuthenticated {
		resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
		return resp
	}
	tokens, err := bt.b.Tokens(ctx)
	if err != nil {
		resp.ErrorCode = unreachable(err)
		return resp
	}
	if r.Owners != nil && len(r.Owners) == 0 {
		return resp
	}
	var shown []*upstream.BrokerToken
	for _, t := range tokens {
		if r.Owners != nil && !describedFor(t, r.Owners) {
			continue
		}
		if t.OwnerOrRenewer(c.Principal) || t.Requester == c.Principal || bt.super[c.Principal] {
			shown = append(shown, t)
		}
	}
	sort.Slice(shown, func(i, j int) bool { return shown[i].Issue.Before(shown[j].Issue) })
	for _, t := range shown {
		resp.TokenDetails = append(resp.TokenDetails, tokenDetail(t.Info(), t.HMAC))
	}
	return resp
}

// describedFor tells whether an owner filter selects t: one of owners owns,
// renews or requested it.
func describedFor(t *upstream.BrokerToken, owners []kmsg.DescribeDelegationTokenRequestOwner) bool {
	for _, o := range owners {
		p := dtoken.Principal{Type: o.PrincipalType, Name: o.PrincipalName}
		if t.OwnerOrRenewer(p) || t.Requester == p {
			return true
		}
	}
	return false
}
