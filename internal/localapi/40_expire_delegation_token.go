package localapi

// ExpireDelegationToken (key 40), versions 0-2: v2 is flexible.

import "github.com/twmb/franz-go/pkg/kmsg"

func (a *APIs) expireDelegationToken(c caller, r *kmsg.ExpireDelegationTokenRequest) (kmsg.Response, error) {
	cl, err := tokenCaller(c)
	if err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrExpireDelegationTokenResponse()
	resp.ErrorCode, resp.ExpiryTimestamp, err = expiryAnswer(a.tokens.Expire(cl, r.HMAC, millis(r.ExpiryPeriodMillis)))
	if err != nil {
		return nil, err
	}
	return resp, nil
}
