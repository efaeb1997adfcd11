package localapi

// RenewDelegationToken (key 39), versions 0-2: v2 is flexible.

import "github.com/twmb/franz-go/pkg/kmsg"

func (a *APIs) renewDelegationToken(c caller, r *kmsg.RenewDelegationTokenRequest) (kmsg.Response, error) {
	cl, err := tokenCaller(c)
	if err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrRenewDelegationTokenResponse()
	resp.ErrorCode, resp.ExpiryTimestamp, err = expiryAnswer(a.tokens.Renew(cl, r.HMAC, millis(r.RenewTimeMillis)))
	if err != nil {
		return nil, err
	}
	return resp, nil
}
