package localapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func newAPIs(t testing.TB, key string) (*APIs, *credstore.Store) {
	t.Helper()
	now := time.UnixMilli(1_700_000_000_000)
	tokens, err := dtoken.New(dtoken.Options{SecretKey: key, SuperUsers: []string{"User:admin"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	file := credstore.NewSnapshot()
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	file.Put(sasl.ScramSHA512, "fileuser", c)
	store := credstore.NewStore(file)
	admin, err := credstore.NewAdmin(store, credstore.NewMemUsers(), []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	return New(tokens, admin), store
}

func TestTableServesEveryListedVersion(t *testing.T) {
	a, _ := newAPIs(t, "k")
	seen := map[int16]bool{}
	for _, r := range a.Ranges() {
		if seen[r.Key] || r.Min < 0 || r.Max < r.Min || r.Max > protocol.MaxVersion(r.Key) {
			t.Fatalf("%s: range %d-%d", kmsg.NameForKey(r.Key), r.Min, r.Max)
		}
		seen[r.Key] = true
		for v := r.Min; v <= r.Max; v++ {
			req := kmsg.RequestForKey(r.Key)
			req.SetVersion(v)
			resp, err := a.Handle(context.Background(), "User:admin", false, req)
			if err != nil || resp.Key() != r.Key {
				t.Errorf("%s v%d: %v", kmsg.NameForKey(r.Key), v, err)
			}
		}
	}
	if _, err := a.Handle(context.Background(), "User:admin", false, kmsg.NewPtrMetadataRequest()); err == nil {
		t.Fatal("an API outside the table was answered")
	}
}

func TestTokenAPIShapes(t *testing.T) {
	a, _ := newAPIs(t, "k")
	ctx := context.Background()
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	req.SetVersion(3)
	req.OwnerPrincipalName = kmsg.StringPtr("bob")
	resp, err := a.Handle(ctx, "User:alice", false, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.CreateDelegationTokenResponse)
	if r.ErrorCode != 65 || r.IssueTimestamp != -1 || r.PrincipalName != "bob" || r.TokenRequesterPrincipalName != "alice" || r.TokenID != "" {
		t.Fatalf("%+v", r)
	}
	d := kmsg.NewPtrDescribeDelegationTokenRequest()
	resp, _ = a.Handle(ctx, "User:alice", true, d)
	if resp.(*kmsg.DescribeDelegationTokenResponse).ErrorCode != 64 {
		t.Fatal("describe from a token connection")
	}
	rn := kmsg.NewPtrRenewDelegationTokenRequest()
	resp, _ = a.Handle(ctx, "User:alice", true, rn)
	if rr := resp.(*kmsg.RenewDelegationTokenResponse); rr.ErrorCode != 64 || rr.ExpiryTimestamp != -1 {
		t.Fatalf("%+v", rr)
	}
	resp, _ = a.Handle(ctx, "User:alice", false, rn)
	if rr := resp.(*kmsg.RenewDelegationTokenResponse); rr.ErrorCode != 62 || rr.ExpiryTimestamp != 0 {
		t.Fatalf("%+v", rr)
	}

	disabled, _ := newAPIs(t, "")
	resp, _ = disabled.Handle(ctx, "User:alice", false, kmsg.NewPtrCreateDelegationTokenRequest())
	if r := resp.(*kmsg.CreateDelegationTokenResponse); r.ErrorCode != 61 || r.IssueTimestamp != 0 || r.PrincipalName != "alice" {
		t.Fatalf("disabled: %+v", r)
	}
}

func TestEveryTokenRefusalHasItsCode(t *testing.T) {
	for err, want := range map[error]int16{
		dtoken.ErrDisabled: 61, dtoken.ErrNotFound: 62, dtoken.ErrOwnerMismatch: 63, dtoken.ErrRequestNotAllowed: 64,
		dtoken.ErrUnauthorized: 65, dtoken.ErrExpired: 66, dtoken.ErrInvalidPrincipalType: 67,
	} {
		if code, ok := tokenError(err); !ok || code != want {
			t.Errorf("%v: %d %v, want %d", err, code, ok, want)
		}
	}
	if _, ok := tokenError(errors.New("persist delegation token: disk full")); ok {
		t.Error("a storage failure was answered as a refusal")
	}
}

func TestScramAdminAnswers(t *testing.T) {
	a, store := newAPIs(t, "k")
	ctx := context.Background()
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, d := range []struct {
		user string
		mech int8
	}{{"dup", 2}, {"ghost", 2}} {
		x := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		x.Name, x.Mechanism = d.user, d.mech
		alter.Deletions = append(alter.Deletions, x)
	}
	for _, u := range []struct {
		user       string
		mech       int8
		iterations int32
		salt       string
	}{{"dup", 1, 4096, "s"}, {"", 2, 4096, "s"}, {"badmech", 3, 4096, "s"}, {"few", 2, 4095, "s"},
		{"many", 2, 16385, "s"}, {"ok", 2, 8192, "s"}, {"fileuser", 2, 4096, "s"}, {"nosalt", 2, 4096, ""}} {
		x := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		x.Name, x.Mechanism, x.Iterations = u.user, u.mech, u.iterations
		x.Salt, x.SaltedPassword = []byte(u.salt), make([]byte, 64)
		alter.Upsertions = append(alter.Upsertions, x)
	}
	resp, err := a.Handle(ctx, "User:admin", false, alter)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code int16
		msg  string
	}
	want := []struct {
		user string
		answer
	}{
		{"dup", answer{92, "A user credential cannot be altered twice in the same request"}},
		{"ghost", answer{91, "Attempt to delete a user credential that does not exist"}},
		{"", answer{93, "Username must not be empty"}},
		{"badmech", answer{33, "Unknown SCRAM mechanism"}},
		{"few", answer{93, "Too few iterations"}},
		{"many", answer{93, "Too many iterations"}},
		{"ok", answer{0, ""}},
		{"fileuser", answer{93, "User fileuser is defined in credentials.file and is read-only to the admin API"}},
		{"nosalt", answer{93, "invalid SCRAM credential: empty salt"}},
	}
	res := resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results
	if len(res) != len(want) {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	for i, w := range want {
		got := answer{res[i].ErrorCode, ""}
		if res[i].ErrorMessage != nil {
			got.msg = *res[i].ErrorMessage
		}
		if res[i].User != w.user || got != w.answer {
			t.Errorf("result %d: %q %+v, want %q %+v", i, res[i].User, got, w.user, w.answer)
		}
	}
	if res[6].ErrorMessage != nil {
		t.Errorf("a user without an error has message %q, want null", *res[6].ErrorMessage)
	}
	if _, err := store.LookupUser(ctx, sasl.ScramSHA512, "ok"); err != nil {
		t.Fatal("upserted user cannot be looked up")
	}

	d := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"ok", "ok", "nobody"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		d.Users = append(d.Users, u)
	}
	dresp, _ := a.Handle(ctx, "User:admin", false, d)
	dr := dresp.(*kmsg.DescribeUserSCRAMCredentialsResponse).Results
	if len(dr) != 2 || dr[0].ErrorCode != 92 || dr[1].ErrorCode != 91 ||
		*dr[0].ErrorMessage != "Cannot describe SCRAM credentials for the same user twice in a single request: ok" ||
		*dr[1].ErrorMessage != "Attempt to describe a user credential that does not exist: nobody" {
		t.Fatalf("describe: %+v", dr)
	}
	dresp, _ = a.Handle(ctx, "User:admin", false, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest())
	if all := dresp.(*kmsg.DescribeUserSCRAMCredentialsResponse).Results; len(all) != 2 || all[1].User != "ok" ||
		len(all[1].CredentialInfos) != 1 || all[1].CredentialInfos[0].Mechanism != 2 || all[1].CredentialInfos[0].Iterations != 8192 {
		t.Fatalf("describe all: %+v", all)
	}
	dresp, _ = a.Handle(ctx, "User:bob", false, d)
	if dd := dresp.(*kmsg.DescribeUserSCRAMCredentialsResponse); dd.ErrorCode != 31 || len(dd.Results) != 3 || dd.Results[0].User != "" ||
		*dd.ErrorMessage != "Cluster authorization failed." {
		t.Fatalf("describe denied: %+v", dd)
	}
	aresp, _ := a.Handle(ctx, "User:bob", false, alter)
	if ar := aresp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results; len(ar) != 9 || ar[0].User != "" || ar[1].User != "badmech" || ar[0].ErrorCode != 31 {
		t.Fatalf("alter denied: %+v", ar)
	}
}

// TestTokenLimitAnswersPolicyViolation: one token over the owner's limit is
// answered with POLICY_VIOLATION (44) and the broker-refusal timestamps.
func TestTokenLimitAnswersPolicyViolation(t *testing.T) {
	tokens, err := dtoken.New(dtoken.Options{SecretKey: "k", MaxPerOwner: 1})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := credstore.NewAdmin(credstore.NewStore(nil), credstore.NewMemUsers(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := New(tokens, admin)
	var codes []int16
	for range 2 {
		req := kmsg.NewPtrCreateDelegationTokenRequest()
		req.SetVersion(3)
		resp, err := a.Handle(context.Background(), "User:alice", false, req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.CreateDelegationTokenResponse)
		codes = append(codes, r.ErrorCode)
		if r.ErrorCode != 0 && (r.IssueTimestamp != -1 || r.TokenID != "" || len(r.HMAC) != 0) {
			t.Errorf("refusal carries a token: %+v", r)
		}
	}
	if codes[0] != 0 || codes[1] != kerr.PolicyViolation.Code {
		t.Fatalf("codes %v, want [0 %d]", codes, kerr.PolicyViolation.Code)
	}
}
