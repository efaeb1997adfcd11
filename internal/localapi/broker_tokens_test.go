package localapi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/upstream"
	"github.com/scram-proxy/scram-proxy/internal/upstream/upstreamtest"
)

func newBrokerAPIs(t *testing.T) (*APIs, *upstreamtest.TokenBroker) {
	t.Helper()
	a, _ := newAPIs(t, "")
	b := &upstreamtest.TokenBroker{Key: "secret", Requester: dtoken.Principal{Type: "User", Name: "proxy"}}
	bt := upstream.NewBrokerTokens(upstream.BrokerTokensOptions{Dial: b, Self: "proxy", SecretKey: "secret",
		Mechanism: "SCRAM-SHA-512", MaxAge: time.Nanosecond})
	return a.WithBrokerTokens(bt, []string{"User:admin"}), b
}

func brokerCall[R kmsg.Response](t *testing.T, a *APIs, principal string, tokenAuth bool, req kmsg.Request) R {
	t.Helper()
	resp, err := a.Handle(context.Background(), principal, tokenAuth, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func createReq(owner string, renewers ...string) *kmsg.CreateDelegationTokenRequest {
	r := kmsg.NewPtrCreateDelegationTokenRequest()
	r.SetVersion(3)
	if owner != "" {
		r.OwnerPrincipalType, r.OwnerPrincipalName = kmsg.StringPtr("User"), kmsg.StringPtr(owner)
	}
	for _, n := range renewers {
		rn := kmsg.NewCreateDelegationTokenRequestRenewer()
		rn.PrincipalType, rn.PrincipalName = "User", n
		r.Renewers = append(r.Renewers, rn)
	}
	r.MaxLifetimeMillis = -1
	return r
}

// With the broker store, Kafka's rules are applied to the caller before the
// proxy acts at the brokers with its own identity, and the proxy's
// principal is in no answer.
func TestBrokerStoreTokenRules(t *testing.T) {
	a, _ := newBrokerAPIs(t)

	// Create: the caller owns the token and is its requester; the proxy is
	// a renewer at the broker, not in the answer.
	cr := brokerCall[*kmsg.CreateDelegationTokenResponse](t, a, "User:alice", false, createReq("", "bob"))
	if cr.ErrorCode != 0 || cr.PrincipalName != "alice" || cr.TokenRequesterPrincipalName != "alice" || cr.TokenID == "" ||
		string(cr.HMAC) != string(dtoken.HMAC("secret", cr.TokenID)) {
		t.Fatalf("create as alice: %+v", cr)
	}
	for _, tc := range []struct {
		name      string
		principal string
		tokenAuth bool
		req       *kmsg.CreateDelegationTokenRequest
		code      int16
	}{
		{"token connection", "User:alice", true, createReq(""), kerr.DelegationTokenRequestNotAllowed.Code},
		{"another owner, not a super user", "User:alice", false, createReq("bob"), kerr.DelegationTokenAuthorizationFailed.Code},
		{"owned by the proxy", "User:admin", false, createReq("proxy"), kerr.DelegationTokenAuthorizationFailed.Code},
		{"group renewer", "User:alice", false, func() *kmsg.CreateDelegationTokenRequest {
			r := createReq("")
			rn := kmsg.NewCreateDelegationTokenRequestRenewer()
			rn.PrincipalType, rn.PrincipalName = "Group", "g"
			r.Renewers = append(r.Renewers, rn)
			return r
		}(), kerr.InvalidPrincipalType.Code},
		{"super user for another owner", "User:admin", false, createReq("carol"), 0},
	} {
		got := brokerCall[*kmsg.CreateDelegationTokenResponse](t, a, tc.principal, tc.tokenAuth, tc.req)
		if got.ErrorCode != tc.code {
			t.Errorf("create, %s: error %d, want %d", tc.name, got.ErrorCode, tc.code)
		}
		if tc.code != 0 && (got.IssueTimestamp != -1 || len(got.HMAC) != 0) {
			t.Errorf("create, %s: refusal carries timestamps %d or an HMAC", tc.name, got.IssueTimestamp)
		}
	}

	// Describe: alice sees hers, bob sees the one he renews, carol nothing
	// of theirs, admin everything; never the proxy.
	describe := func(principal string, tokenAuth bool, owners ...string) *kmsg.DescribeDelegationTokenResponse {
		r := kmsg.NewPtrDescribeDelegationTokenRequest()
		r.SetVersion(3)
		if owners != nil {
			r.Owners = []kmsg.DescribeDelegationTokenRequestOwner{}
			for _, o := range owners {
				ow := kmsg.NewDescribeDelegationTokenRequestOwner()
				ow.PrincipalType, ow.PrincipalName = "User", o
				r.Owners = append(r.Owners, ow)
			}
		}
		return brokerCall[*kmsg.DescribeDelegationTokenResponse](t, a, principal, tokenAuth, r)
	}
	for _, tc := range []struct {
		principal string
		owners    []string
		n         int
	}{
		{"User:alice", nil, 1}, {"User:bob", nil, 1}, {"User:dave", nil, 0}, {"User:admin", nil, 2},
		{"User:admin", []string{"carol"}, 1}, {"User:admin", []string{}, 0}, {"User:admin", []string{"proxy"}, 0},
	} {
		d := describe(tc.principal, false, tc.owners...)
		if d.ErrorCode != 0 || len(d.TokenDetails) != tc.n {
			t.Errorf("describe as %s, owners %v: error %d, %d tokens, want %d", tc.principal, tc.owners, d.ErrorCode, len(d.TokenDetails), tc.n)
		}
		for _, td := range d.TokenDetails {
			if td.TokenRequesterPrincipalName == "proxy" {
				t.Errorf("describe as %s shows the proxy as requester", tc.principal)
			}
			for _, rn := range td.Renewers {
				if rn.PrincipalName == "proxy" {
					t.Errorf("describe as %s shows the proxy as renewer", tc.principal)
				}
			}
		}
	}
	if d := describe("User:alice", true); d.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code {
		t.Errorf("describe on a token connection: error %d", d.ErrorCode)
	}

	// Renew and expire: owner or renewer only, judged by the proxy (the
	// proxy itself may renew every token at the broker).
	renew := func(principal string, tokenAuth bool, mac []byte) *kmsg.RenewDelegationTokenResponse {
		r := kmsg.NewPtrRenewDelegationTokenRequest()
		r.HMAC, r.RenewTimeMillis = mac, 3600_000
		return brokerCall[*kmsg.RenewDelegationTokenResponse](t, a, principal, tokenAuth, r)
	}
	expire := func(principal string, mac []byte) *kmsg.ExpireDelegationTokenResponse {
		r := kmsg.NewPtrExpireDelegationTokenRequest()
		r.HMAC, r.ExpiryPeriodMillis = mac, -1
		return brokerCall[*kmsg.ExpireDelegationTokenResponse](t, a, principal, false, r)
	}
	if r := renew("User:alice", true, cr.HMAC); r.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code || r.ExpiryTimestamp != -1 {
		t.Errorf("renew on a token connection: %+v", r)
	}
	if r := renew("User:dave", false, cr.HMAC); r.ErrorCode != kerr.DelegationTokenOwnerMismatch.Code {
		t.Errorf("renew by a stranger: error %d", r.ErrorCode)
	}
	if r := renew("User:admin", false, cr.HMAC); r.ErrorCode != kerr.DelegationTokenOwnerMismatch.Code {
		t.Errorf("renew by a super user who is neither owner nor renewer: error %d", r.ErrorCode)
	}
	if r := renew("User:bob", false, cr.HMAC); r.ErrorCode != 0 || r.ExpiryTimestamp <= 0 {
		t.Errorf("renew by the renewer: %+v", r)
	}
	if r := renew("User:alice", false, []byte("no such hmac")); r.ErrorCode != kerr.DelegationTokenNotFound.Code {
		t.Errorf("renew of an unknown token: error %d", r.ErrorCode)
	}
	if r := expire("User:dave", cr.HMAC); r.ErrorCode != kerr.DelegationTokenOwnerMismatch.Code {
		t.Errorf("expire by a stranger: error %d", r.ErrorCode)
	}
	if r := expire("User:alice", cr.HMAC); r.ErrorCode != 0 {
		t.Errorf("expire by the owner: error %d", r.ErrorCode)
	}
	if r := expire("User:alice", cr.HMAC); r.ErrorCode != kerr.DelegationTokenNotFound.Code {
		t.Errorf("expire of an expired token: error %d", r.ErrorCode)
	}
}

// A broker that cannot be reached is REQUEST_TIMED_OUT, which clients
// retry; the connection stays.
func TestBrokerStoreUnreachable(t *testing.T) {
	a, _ := newAPIs(t, "")
	bt := upstream.NewBrokerTokens(upstream.BrokerTokensOptions{Dial: deadDialer{}, Self: "proxy", SecretKey: "secret", Mechanism: "SCRAM-SHA-512"})
	a = a.WithBrokerTokens(bt, nil)
	d := brokerCall[*kmsg.DescribeDelegationTokenResponse](t, a, "User:alice", false, kmsg.NewPtrDescribeDelegationTokenRequest())
	if d.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("describe with the brokers down: error %d", d.ErrorCode)
	}
	c := brokerCall[*kmsg.CreateDelegationTokenResponse](t, a, "User:alice", false, createReq(""))
	if c.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("create with the brokers down: error %d", c.ErrorCode)
	}
}

// Brokers without delegation.token.secret.key answer 61; the proxy passes
// it on, with the controller's zero timestamps for renew and expire.
func TestBrokerStoreDisabledAtTheBrokers(t *testing.T) {
	a, _ := newAPIs(t, "")
	b := &upstreamtest.TokenBroker{Key: "secret", Requester: dtoken.Principal{Type: "User", Name: "proxy"}, Disabled: true}
	a = a.WithBrokerTokens(upstream.NewBrokerTokens(upstream.BrokerTokensOptions{Dial: b, Self: "proxy", SecretKey: "secret",
		Mechanism: "SCRAM-SHA-512"}), nil)
	disabled := kerr.DelegationTokenAuthDisabled.Code
	if d := brokerCall[*kmsg.DescribeDelegationTokenResponse](t, a, "User:alice", false, kmsg.NewPtrDescribeDelegationTokenRequest()); d.ErrorCode != disabled {
		t.Errorf("describe: error %d", d.ErrorCode)
	}
	if c := brokerCall[*kmsg.CreateDelegationTokenResponse](t, a, "User:alice", false, createReq("")); c.ErrorCode != disabled || c.IssueTimestamp != 0 {
		t.Errorf("create: error %d, issue timestamp %d", c.ErrorCode, c.IssueTimestamp)
	}
	r := kmsg.NewPtrRenewDelegationTokenRequest()
	r.HMAC = []byte("x")
	if rr := brokerCall[*kmsg.RenewDelegationTokenResponse](t, a, "User:alice", false, r); rr.ErrorCode != disabled || rr.ExpiryTimestamp != 0 {
		t.Errorf("renew: error %d, expiry timestamp %d", rr.ErrorCode, rr.ExpiryTimestamp)
	}
}

type deadDialer struct{}

func (deadDialer) Dial(context.Context, string, int32) (net.Conn, error) {
	return nil, errors.New("brokers down")
}
