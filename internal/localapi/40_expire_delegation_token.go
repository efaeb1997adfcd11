package localapi

// ExpireDelegationToken (key 40), versions 0-2: v2 is flexible. A negative
// period ends the token at once.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

func (a *APIs) expireDelegationToken(c caller, r *kmsg.ExpireDelegationTokenRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrExpireDelegationTokenResponse()
	var err error
	resp.ErrorCode, resp.ExpiryTimestamp, err = a.setExpiry(c, (*dtoken.Manager).Expire, r.HMAC, r.ExpiryPeriodMillis)
	return resp, err
}
