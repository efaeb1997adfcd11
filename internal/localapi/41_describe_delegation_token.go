package localapi

// DescribeDelegationToken (key 41), versions 0-3: v2 is flexible, v3 adds
// each token's requester (KIP-373). The answer holds token HMACs, the
// tokens' passwords.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

func (a *APIs) describeDelegationToken(c caller, r *kmsg.DescribeDelegationTokenRequest) (kmsg.Response, error) {
	cl, err := tokenCaller(c)
	if err != nil {
		return nil, err
	}
	var owners []dtoken.Principal // nil: every token
	if r.Owners != nil {
		owners = make([]dtoken.Principal, 0, len(r.Owners))
		for _, o := range r.Owners {
			owners = append(owners, dtoken.Principal{Type: o.PrincipalType, Name: o.PrincipalName})
		}
	}
	resp := kmsg.NewPtrDescribeDelegationTokenResponse()
	tokens, err := a.tokens.Describe(cl, owners)
	if err != nil {
		code, ok := tokenError(err)
		if !ok {
			return nil, err
		}
		resp.ErrorCode = code
		return resp, nil
	}
	for _, d := range tokens {
		resp.TokenDetails = append(resp.TokenDetails, tokenDetail(d.Info, d.HMAC))
	}
	return resp, nil
}
