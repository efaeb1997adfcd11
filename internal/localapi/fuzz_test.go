package localapi

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// FuzzHandle decodes an arbitrary body as a request of one of the table's
// APIs, at one of the versions it answers, as the proxy does after
// authentication, and hands what decodes to the handler table. No input
// may panic or fail internally (the stores are in memory), and the answer
// must be of the request's API and survive an encode, decode, encode round
// trip at the request's version byte for byte.
func FuzzHandle(f *testing.F) {
	a, _ := newAPIs(f, "fuzz-secret-key")
	seed := func(req kmsg.Request, v int16, tokenAuth, admin bool) {
		req.SetVersion(v)
		for i, t := range table {
			if t.key == req.Key() {
				f.Add(uint8(i), uint8(v-t.min), tokenAuth, admin, req.AppendTo(nil))
			}
		}
	}
	create := kmsg.NewPtrCreateDelegationTokenRequest()
	create.MaxLifetimeMillis = 60_000
	create.Renewers = []kmsg.CreateDelegationTokenRequestRenewer{{PrincipalType: "User", PrincipalName: "bob"}}
	seed(create, 3, false, true)
	seed(create, 0, false, false)
	renew := kmsg.NewPtrRenewDelegationTokenRequest()
	renew.HMAC = bytes.Repeat([]byte{7}, 64)
	renew.RenewTimeMillis = 1000
	seed(renew, 2, false, false)
	expire := kmsg.NewPtrExpireDelegationTokenRequest()
	expire.HMAC = []byte{1, 2, 3}
	expire.ExpiryPeriodMillis = -1
	seed(expire, 1, false, true)
	describe := kmsg.NewPtrDescribeDelegationTokenRequest()
	describe.Owners = []kmsg.DescribeDelegationTokenRequestOwner{{PrincipalType: "User", PrincipalName: "admin"}}
	seed(describe, 3, true, false)
	du := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	du.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{{Name: "fileuser"}, {Name: "nobody"}, {Name: "fileuser"}}
	seed(du, 0, false, true)
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	alter.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{
		Name: "carol", Mechanism: 2, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: bytes.Repeat([]byte{9}, 64),
	}}
	alter.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "fileuser", Mechanism: 2}, {Name: "x", Mechanism: 0}}
	seed(alter, 0, false, true)
	f.Add(uint8(0), uint8(3), false, true, []byte{0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})

	f.Fuzz(func(t *testing.T, which, version uint8, tokenAuth, admin bool, body []byte) {
		if a.tokens.Len() > 64 {
			// Tokens pile up over millions of inputs and every describe
			// answers all of them: start again from an empty manager.
			a, _ = newAPIs(t, "fuzz-secret-key")
		}
		row := table[int(which)%len(table)]
		v := row.min + int16(version)%(row.max-row.min+1)
		req := kmsg.RequestForKey(row.key)
		req.SetVersion(v)
		if err := req.ReadFrom(body); err != nil {
			return // the proxy closes the connection on a body that does not decode
		}
		principal := "User:alice"
		if admin {
			principal = "User:admin"
		}
		resp, err := a.Handle(context.Background(), principal, tokenAuth, req)
		if err != nil {
			t.Fatalf("%s v%d: internal failure: %v", kmsg.NameForKey(row.key), v, err)
		}
		if resp.Key() != row.key {
			t.Fatalf("%s v%d answered with %s", kmsg.NameForKey(row.key), v, kmsg.NameForKey(resp.Key()))
		}
		h := protocol.RequestHeader{Key: row.key, Version: v, CorrelationID: 1}
		frame := protocol.AppendResponse(nil, h, resp)
		hl, err := protocol.ResponseHeaderLen(frame[4:], row.key, v)
		if err != nil {
			t.Fatal(err)
		}
		enc := frame[4+hl:]
		back := req.ResponseKind()
		back.SetVersion(v)
		if err := back.ReadFrom(enc); err != nil {
			t.Fatalf("%s v%d: answer does not decode: %v", kmsg.NameForKey(row.key), v, err)
		}
		if again := back.AppendTo(nil); !bytes.Equal(again, enc) {
			t.Fatalf("%s v%d: answer changes in a round trip:\n%x\n%x", kmsg.NameForKey(row.key), v, enc, again)
		}
	})
}
