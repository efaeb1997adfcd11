package localapi

// AlterUserScramCredentials (key 51), version 0 (KIP-554): deletions and
// upsertions from salted passwords, one result per user.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

func (a *APIs) alterUserSCRAMCredentials(c caller, r *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	dels := make([]credstore.Deletion, 0, len(r.Deletions))
	for _, d := range r.Deletions {
		dels = append(dels, credstore.Deletion{User: d.Name, Mechanism: d.Mechanism})
	}
	ups := make([]credstore.Upsertion, 0, len(r.Upsertions))
	for _, u := range r.Upsertions {
		ups = append(ups, credstore.Upsertion{User: u.Name, Mechanism: u.Mechanism, Iterations: u.Iterations,
			Salt: u.Salt, SaltedPassword: u.SaltedPassword})
	}
	results, err := a.admin.Alter(c.principal, dels, ups)
	resp := kmsg.NewPtrAlterUserSCRAMCredentialsResponse()
	if code, msg, ok := unavailable(err); ok {
		// As the KRaft controller answers a write it could not complete:
		// every user of the request gets the error, in order of mention.
		seen := map[string]bool{}
		for _, u := range append(append([]string(nil), userNames(dels)...), upsertedNames(ups)...) {
			if seen[u] {
				continue
			}
			seen[u] = true
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = u, code, kmsg.StringPtr(msg)
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	for _, u := range results {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = u.User
		res.ErrorCode, res.ErrorMessage = userError(protocol.KeyAlterUserSCRAMCredentials, u.User, u.Err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func userNames(ds []credstore.Deletion) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.User)
	}
	return out
}

func upsertedNames(us []credstore.Upsertion) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.User)
	}
	return out
}
