// Package upstreamtest has test doubles for the upstream side: a broker
// that keeps delegation tokens, reached as the proxy's own identity.
package upstreamtest

import (
	"context"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// TokenBroker answers the four delegation token APIs as a Kafka broker does
// for one caller, Requester (the proxy's identity), keeping the tokens in
// memory. It implements upstream.ConnDialer: every Dial is a new in-memory
// connection to it. Safe for concurrent use.
type TokenBroker struct {
	Key       string           // delegation.token.secret.key
	Requester dtoken.Principal // who every request comes from
	Now       func() time.Time // nil: time.Now
	// Disabled answers every token request with
	// DELEGATION_TOKEN_AUTH_DISABLED, as brokers without a secret key do.
	Disabled bool

	// Describes counts DescribeDelegationToken requests.
	Describes atomic.Int32
	// ExpireLag answers this many ExpireDelegationToken requests with
	// DELEGATION_TOKEN_NOT_FOUND before handling them, as a node of a
	// real cluster does while the token's creation has not reached it yet.
	ExpireLag atomic.Int32

	mu     sync.Mutex
	tokens map[string]*kmsg.DescribeDelegationTokenResponseTokenDetail
	next   int
}

// lagging takes one of the ExpireLag answers, if any are left.
func (b *TokenBroker) lagging() bool {
	for {
		n := b.ExpireLag.Load()
		if n <= 0 {
			return false
		}
		if b.ExpireLag.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (b *TokenBroker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Add stores a token as another party created it (owner, requester and
// renewers as given) and returns its id.
func (b *TokenBroker) Add(owner, requester dtoken.Principal, renewers []dtoken.Principal, expiry time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addLocked(owner, requester, renewers, expiry)
}

func (b *TokenBroker) addLocked(owner, requester dtoken.Principal, renewers []dtoken.Principal, expiry time.Time) string {
	if b.tokens == nil {
		b.tokens = map[string]*kmsg.DescribeDelegationTokenResponseTokenDetail{}
	}
	b.next++
	id := "token-" + strconv.Itoa(b.next)
	d := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
	d.PrincipalType, d.PrincipalName = owner.Type, owner.Name
	d.TokenRequesterPrincipalType, d.TokenRequesterPrincipalName = requester.Type, requester.Name
	now := b.now()
	d.IssueTimestamp, d.ExpiryTimestamp, d.MaxTimestamp = now.UnixMilli(), expiry.UnixMilli(), expiry.Add(time.Hour).UnixMilli()
	d.TokenID, d.HMAC = id, dtoken.HMAC(b.Key, id)
	for _, r := range renewers {
		rn := kmsg.NewDescribeDelegationTokenResponseTokenDetailRenewer()
		rn.PrincipalType, rn.PrincipalName = r.Type, r.Name
		d.Renewers = append(d.Renewers, rn)
	}
	b.tokens[id] = &d
	return id
}

// Dial opens an in-memory connection to the broker.
func (b *TokenBroker) Dial(context.Context, string, int32) (net.Conn, error) {
	client, server := net.Pipe()
	go b.serve(server)
	return client, nil
}

func (b *TokenBroker) serve(c net.Conn) {
	defer c.Close()
	r := protocol.NewFrameReader(c, 1<<20, nil)
	for {
		frame, err := r.Read()
		if err != nil {
			return
		}
		h, err := protocol.ParseRequestHeader(frame)
		if err != nil {
			return
		}
		req := kmsg.RequestForKey(h.Key)
		req.SetVersion(h.Version)
		if err := req.ReadFrom(frame[h.Len:]); err != nil {
			return
		}
		if _, err := c.Write(protocol.AppendResponse(nil, h, b.answer(req))); err != nil {
			return
		}
	}
}

func (b *TokenBroker) byHMAC(mac []byte) *kmsg.DescribeDelegationTokenResponseTokenDetail {
	for _, d := range b.tokens {
		if string(d.HMAC) == string(mac) {
			return d
		}
	}
	return nil
}

func (b *TokenBroker) mayRenew(d *kmsg.DescribeDelegationTokenResponseTokenDetail) bool {
	if d.PrincipalType == b.Requester.Type && d.PrincipalName == b.Requester.Name {
		return true
	}
	for _, r := range d.Renewers {
		if r.PrincipalType == b.Requester.Type && r.PrincipalName == b.Requester.Name {
			return true
		}
	}
	return false
}

func (b *TokenBroker) answer(req kmsg.Request) kmsg.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.Disabled {
		resp := req.ResponseKind()
		switch r := resp.(type) {
		case *kmsg.DescribeDelegationTokenResponse:
			r.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
		case *kmsg.CreateDelegationTokenResponse:
			r.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
		case *kmsg.RenewDelegationTokenResponse:
			r.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
		case *kmsg.ExpireDelegationTokenResponse:
			r.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
		}
		return resp
	}
	switch r := req.(type) {
	case *kmsg.DescribeDelegationTokenRequest:
		b.Describes.Add(1)
		resp := kmsg.NewPtrDescribeDelegationTokenResponse()
		ids := make([]string, 0, len(b.tokens))
		for id := range b.tokens {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			resp.TokenDetails = append(resp.TokenDetails, *b.tokens[id])
		}
		return resp
	case *kmsg.CreateDelegationTokenRequest:
		resp := kmsg.NewPtrCreateDelegationTokenResponse()
		owner := dtoken.Principal{Type: *r.OwnerPrincipalType, Name: *r.OwnerPrincipalName}
		var renewers []dtoken.Principal
		for _, rn := range r.Renewers {
			renewers = append(renewers, dtoken.Principal{Type: rn.PrincipalType, Name: rn.PrincipalName})
		}
		id := b.addLocked(owner, b.Requester, renewers, now.Add(24*time.Hour))
		d := b.tokens[id]
		resp.PrincipalType, resp.PrincipalName = owner.Type, owner.Name
		resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = b.Requester.Type, b.Requester.Name
		resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = d.IssueTimestamp, d.ExpiryTimestamp, d.MaxTimestamp
		resp.TokenID, resp.HMAC = id, d.HMAC
		return resp
	case *kmsg.RenewDelegationTokenRequest:
		resp := kmsg.NewPtrRenewDelegationTokenResponse()
		d := b.byHMAC(r.HMAC)
		switch {
		case d == nil:
			resp.ErrorCode = kerr.DelegationTokenNotFound.Code
		case !b.mayRenew(d):
			resp.ErrorCode = kerr.DelegationTokenOwnerMismatch.Code
		default:
			d.ExpiryTimestamp = now.Add(time.Duration(r.RenewTimeMillis) * time.Millisecond).UnixMilli()
			resp.ExpiryTimestamp = d.ExpiryTimestamp
		}
		return resp
	case *kmsg.ExpireDelegationTokenRequest:
		resp := kmsg.NewPtrExpireDelegationTokenResponse()
		d := b.byHMAC(r.HMAC)
		switch {
		case d == nil || b.lagging():
			resp.ErrorCode = kerr.DelegationTokenNotFound.Code
		case !b.mayRenew(d):
			resp.ErrorCode = kerr.DelegationTokenOwnerMismatch.Code
		case r.ExpiryPeriodMillis < 0:
			delete(b.tokens, d.TokenID)
			resp.ExpiryTimestamp = now.UnixMilli()
		default:
			d.ExpiryTimestamp = now.Add(time.Duration(r.ExpiryPeriodMillis) * time.Millisecond).UnixMilli()
			resp.ExpiryTimestamp = d.ExpiryTimestamp
		}
		return resp
	}
	return req.ResponseKind()
}
