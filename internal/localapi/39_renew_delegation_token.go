package localapi

// RenewDelegationToken (key 39), versions 0-2: v2 is flexible.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

func (a *APIs) renewDelegationToken(c caller, r *kmsg.RenewDelegationTokenRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrRenewDelegationTokenResponse()
	var err error
	resp.ErrorCode, resp.ExpiryTimestamp, err = a.setExpiry(c, (*dtoken.Manager).Renew, r.HMAC, r.RenewTimeMillis)
	return resp, err
}
