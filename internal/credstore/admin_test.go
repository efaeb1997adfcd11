package credstore

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func alterReq(dels [][2]any, ups [][3]any) *kmsg.AlterUserSCRAMCredentialsRequest {
	r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, d := range dels {
		x := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		x.Name, x.Mechanism = d[0].(string), d[1].(int8)
		r.Deletions = append(r.Deletions, x)
	}
	for _, u := range ups {
		x := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		x.Name, x.Mechanism, x.Iterations = u[0].(string), u[1].(int8), u[2].(int32)
		x.Salt, x.SaltedPassword = []byte("salt"), make([]byte, 64)
		r.Upsertions = append(r.Upsertions, x)
	}
	return r
}

func TestAlterAndDescribeRules(t *testing.T) {
	file := NewSnapshot()
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	file.Put(sasl.ScramSHA512, "fileuser", c)
	store := NewStore(file)
	a, err := NewAdmin(store, NewMemUsers(), []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	codes := func(resp kmsg.Response) map[string]int16 {
		out := map[string]int16{}
		for _, r := range resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results {
			out[r.User] = r.ErrorCode
		}
		return out
	}
	resp, _ := a.Handle(ctx, "User:admin", false, alterReq(
		[][2]any{{"dup", int8(2)}, {"ghost", int8(2)}},
		[][3]any{{"dup", int8(1), int32(4096)}, {"", int8(2), int32(4096)}, {"badmech", int8(3), int32(4096)},
			{"few", int8(2), int32(4095)}, {"many", int8(2), int32(16385)}, {"ok", int8(2), int32(8192)},
			{"fileuser", int8(2), int32(4096)}}))
	want := map[string]int16{"dup": 92, "ghost": 91, "": 93, "badmech": 33, "few": 93, "many": 93, "ok": 0, "fileuser": 93}
	got := codes(resp)
	for u, w := range want {
		if got[u] != w {
			t.Errorf("%q: %d, want %d", u, got[u], w)
		}
	}
	if _, err := store.LookupUser(ctx, sasl.ScramSHA512, "ok"); err != nil {
		t.Fatal("upserted user cannot be looked up")
	}
	resp, _ = a.Handle(ctx, "User:bob", false, alterReq(nil, [][3]any{{"zed", int8(2), int32(4096)}, {"amy", int8(2), int32(4096)}}))
	res := resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results
	if len(res) != 2 || res[0].User != "amy" || res[0].ErrorCode != 31 || res[1].ErrorCode != 31 {
		t.Fatalf("non super user: %+v", res)
	}

	d := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"ok", "ok", "nobody"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		d.Users = append(d.Users, u)
	}
	dresp, _ := a.Handle(ctx, "User:admin", false, d)
	dr := dresp.(*kmsg.DescribeUserSCRAMCredentialsResponse).Results
	if len(dr) != 2 || dr[0].ErrorCode != 92 || dr[1].ErrorCode != 91 {
		t.Fatalf("describe: %+v", dr)
	}
	dresp, _ = a.Handle(ctx, "User:admin", false, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest())
	all := dresp.(*kmsg.DescribeUserSCRAMCredentialsResponse).Results
	if len(all) != 2 {
		t.Fatalf("describe all: %+v", all)
	}
	dresp, _ = a.Handle(ctx, "User:bob", false, d)
	if dd := dresp.(*kmsg.DescribeUserSCRAMCredentialsResponse); dd.ErrorCode != 31 || len(dd.Results) != 3 || dd.Results[0].User != "" {
		t.Fatalf("describe denied: %+v", dd)
	}
}
