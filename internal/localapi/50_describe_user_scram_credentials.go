package localapi

// DescribeUserScramCredentials (key 50), version 0 (KIP-554): the
// mechanisms and iterations of users' SCRAM credentials, never the
// credentials themselves.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

func (a *APIs) describeUserSCRAMCredentials(c caller, r *kmsg.DescribeUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	names := make([]string, 0, len(r.Users))
	for _, u := range r.Users {
		names = append(names, u.Name)
	}
	resp := kmsg.NewPtrDescribeUserSCRAMCredentialsResponse()
	users, err := a.admin.Describe(c.principal, names)
	if errors.Is(err, credstore.ErrNotSuperUser) {
		// DESCRIBE on CLUSTER denied: the error at the top and for each
		// user named, whose user field Kafka leaves empty.
		resp.ErrorCode, resp.ErrorMessage = userError(protocol.KeyDescribeUserSCRAMCredentials, "", err)
		for range r.Users {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.ErrorCode, res.ErrorMessage = resp.ErrorCode, resp.ErrorMessage
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u.User
		res.ErrorCode, res.ErrorMessage = userError(protocol.KeyDescribeUserSCRAMCredentials, u.User, u.Err)
		for _, cr := range u.Credentials {
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = cr.Mechanism.TypeByte(), int32(cr.Iterations)
			res.CredentialInfos = append(res.CredentialInfos, ci)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
