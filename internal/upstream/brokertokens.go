package upstream

// Delegation tokens kept by the brokers (delegation_tokens.store: broker).
// The proxy's own identity (upstream.sasl) performs the token APIs at the
// brokers on its callers' behalf and describes the brokers' tokens, so that
// a token created through any proxy logs in through every proxy. The
// callers' rights are judged by internal/localapi; this file talks to the
// brokers, keeps their answer for a short while, and derives each token's
// SCRAM credential once.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// DefaultBrokerTokensMaxAge is how old the brokers' description of their
// tokens may be when a login or a token request uses it.
const DefaultBrokerTokensMaxAge = 500 * time.Millisecond

// BrokerTokensOptions configures BrokerTokens.
type BrokerTokensOptions struct {
	// Dial opens connections authenticated as the proxy's own identity
	// (principal "").
	Dial ConnDialer
	// Self is the proxy's own user name at the brokers (upstream.sasl):
	// renewer of every token it creates, and never shown to clients.
	Self string
	// SecretKey is the brokers' delegation.token.secret.key.
	SecretKey string
	// Mechanism is the SCRAM mechanism a token login is forwarded upstream
	// with (SCRAM-SHA-512 or SCRAM-SHA-256).
	Mechanism string
	// MaxAge bounds how old a description may be when used; 0 means
	// DefaultBrokerTokensMaxAge.
	MaxAge  time.Duration
	Logger  *zap.Logger        // nil: no logs
	Metrics BrokerTokenMetrics // nil: none
	Now     func() time.Time   // nil: time.Now
	Rand    io.Reader          // nil: crypto/rand (credential salts)
}

// BrokerTokenMetrics hears of every description of the brokers' tokens.
// Implementations must be safe for concurrent use.
type BrokerTokenMetrics interface {
	// BrokerTokensDescribed: the brokers listed tokens tokens (err nil), or
	// could not be asked.
	BrokerTokensDescribed(tokens int, err error)
}

type nopBrokerTokenMetrics struct{}

func (nopBrokerTokenMetrics) BrokerTokensDescribed(int, error) {}

// BrokerToken is one token as clients are shown it: the proxy's own
// principal is removed from the renewers, and a token the proxy requested
// names its owner as requester (the brokers know only the proxy).
type BrokerToken struct {
	ID        string
	Owner     dtoken.Principal
	Requester dtoken.Principal
	Renewers  []dtoken.Principal
	Issue     time.Time
	Expiry    time.Time
	Max       time.Time
	HMAC      []byte // the token's password; secret

	keyOK bool // HMAC is HMAC-SHA512 of ID under SecretKey
}

// Info is the token's metadata in the token manager's form.
func (t *BrokerToken) Info() dtoken.Info {
	return dtoken.Info{ID: t.ID, Owner: t.Owner, Requester: t.Requester, Renewers: t.Renewers,
		Issue: t.Issue, Expiry: t.Expiry, Max: t.Max}
}

// Expired follows the brokers' rule: past its expiry or its max timestamp.
func (t *BrokerToken) Expired(now time.Time) bool {
	return t.Expiry.Before(now) || t.Max.Before(now)
}

// OwnerOrRenewer is who may renew or expire the token.
func (t *BrokerToken) OwnerOrRenewer(p dtoken.Principal) bool {
	if t.Owner == p {
		return true
	}
	for _, r := range t.Renewers {
		if r == p {
			return true
		}
	}
	return false
}

// BrokerTokensError is a token request the brokers answered with an error
// code (e.g. DELEGATION_TOKEN_AUTH_DISABLED when they have no secret key).
type BrokerTokensError struct{ Code int16 }

func (e *BrokerTokensError) Error() string {
	return "the brokers answered DescribeDelegationToken with " + errName(e.Code)
}

func errName(code int16) string {
	if err := kerr.ErrorForCode(code); err != nil {
		return err.Error()
	}
	return "no error"
}

// BrokerTokens is the brokers' token store as the proxy's identity sees
// it. It is safe for concurrent use.
type BrokerTokens struct {
	o    BrokerTokensOptions
	self dtoken.Principal

	mu     sync.Mutex
	view   *tokenView  // the latest description; nil before the first
	flight *viewFlight // the description under way, if any

	credMu sync.Mutex
	creds  map[string]*tokenCreds // by token id, pruned with each new view
}

// tokenView is one description of the brokers' tokens.
type tokenView struct {
	at     time.Time // when the request was sent
	byID   map[string]*BrokerToken
	byHMAC map[string]*BrokerToken // by string(HMAC)
}

type viewFlight struct {
	done chan struct{}
	view *tokenView
	err  error
}

// tokenCreds are one token's SCRAM credentials, derived at its first login
// per mechanism.
type tokenCreds struct {
	mu sync.Mutex
	m  map[sasl.Mechanism]sasl.Credential
}

// NewBrokerTokens returns the brokers' token store.
func NewBrokerTokens(o BrokerTokensOptions) *BrokerTokens {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultBrokerTokensMaxAge
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = nopBrokerTokenMetrics{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &BrokerTokens{o: o, self: dtoken.Principal{Type: "User", Name: o.Self}, creds: map[string]*tokenCreds{}}
}

// Now is the clock the tokens' expiry is judged by.
func (b *BrokerTokens) Now() time.Time { return b.o.Now() }

// Self is the proxy's own principal at the brokers.
func (b *BrokerTokens) Self() dtoken.Principal { return b.self }

// current returns a description at most MaxAge old, asking the brokers
// when the last one is older: one request at a time, which every caller
// that needs a newer one waits for.
func (b *BrokerTokens) current(ctx context.Context) (*tokenView, error) {
	b.mu.Lock()
	if v := b.view; v != nil && b.o.Now().Sub(v.at) < b.o.MaxAge {
		b.mu.Unlock()
		return v, nil
	}
	f := b.flight
	if f == nil {
		f = &viewFlight{done: make(chan struct{})}
		b.flight = f
		go b.describe(f)
	}
	b.mu.Unlock()
	select {
	case <-f.done:
		return f.view, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// invalidate makes the next use describe the tokens again (after this
// proxy changed them).
func (b *BrokerTokens) invalidate() {
	b.mu.Lock()
	b.view = nil
	b.mu.Unlock()
}

// describe asks the brokers for every token the proxy's identity may see
// and publishes the answer to f and, when it succeeded, as the view.
func (b *BrokerTokens) describe(f *viewFlight) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := b.o.Now()
	f.view, f.err = b.fetch(ctx, at)
	if f.err != nil {
		b.o.Metrics.BrokerTokensDescribed(0, f.err)
	} else {
		b.o.Metrics.BrokerTokensDescribed(len(f.view.byID), nil)
	}
	b.mu.Lock()
	if f.err == nil {
		b.view = f.view
	}
	b.flight = nil
	b.mu.Unlock()
	if f.err == nil {
		b.prune(f.view)
	}
	close(f.done)
}

func (b *BrokerTokens) fetch(ctx context.Context, at time.Time) (*tokenView, error) {
	req := kmsg.NewPtrDescribeDelegationTokenRequest()
	req.SetVersion(3)
	req.Owners = nil // every token the proxy's identity may describe
	resp, err := roundTripAsProxy(ctx, b.o.Dial, req)
	if err != nil {
		return nil, fmt.Errorf("describe the brokers' delegation tokens: %w", err)
	}
	dr := resp.(*kmsg.DescribeDelegationTokenResponse)
	if dr.ErrorCode != 0 {
		return nil, &BrokerTokensError{Code: dr.ErrorCode}
	}
	v := &tokenView{at: at, byID: map[string]*BrokerToken{}, byHMAC: map[string]*BrokerToken{}}
	badKey := 0
	for _, d := range dr.TokenDetails {
		t := b.clientView(d)
		if t == nil {
			continue
		}
		if !t.keyOK {
			badKey++
		}
		v.byID[t.ID] = t
		v.byHMAC[string(t.HMAC)] = t
	}
	if badKey > 0 {
		b.o.Logger.Error("the brokers' delegation tokens are not HMACs under the configured delegation_tokens key: it is not the brokers' delegation.token.secret.key; their logins are refused",
			zap.Int("tokens", badKey))
	}
	return v, nil
}

// clientView turns a broker's token detail into what clients are shown;
// nil for a token owned by the proxy's own principal, which no client may
// use or see.
func (b *BrokerTokens) clientView(d kmsg.DescribeDelegationTokenResponseTokenDetail) *BrokerToken {
	owner := dtoken.Principal{Type: d.PrincipalType, Name: d.PrincipalName}
	if owner == b.self || d.TokenID == "" {
		return nil
	}
	t := &BrokerToken{ID: d.TokenID, Owner: owner,
		Requester: dtoken.Principal{Type: d.TokenRequesterPrincipalType, Name: d.TokenRequesterPrincipalName},
		Issue:     time.UnixMilli(d.IssueTimestamp), Expiry: time.UnixMilli(d.ExpiryTimestamp), Max: time.UnixMilli(d.MaxTimestamp),
		HMAC: d.HMAC}
	if t.Requester == b.self || t.Requester.Name == "" {
		t.Requester = owner
	}
	for _, r := range d.Renewers {
		if p := (dtoken.Principal{Type: r.PrincipalType, Name: r.PrincipalName}); p != b.self {
			t.Renewers = append(t.Renewers, p)
		}
	}
	t.keyOK = hmac.Equal(dtoken.HMAC(b.o.SecretKey, t.ID), t.HMAC)
	return t
}

// prune forgets the credentials of tokens the brokers no longer hold.
func (b *BrokerTokens) prune(v *tokenView) {
	b.credMu.Lock()
	defer b.credMu.Unlock()
	for id := range b.creds {
		if _, ok := v.byID[id]; !ok {
			delete(b.creds, id)
		}
	}
}

// Tokens lists the brokers' tokens (at most MaxAge old) as clients are
// shown them. The tokens are shared: callers must not modify them.
func (b *BrokerTokens) Tokens(ctx context.Context) ([]*BrokerToken, error) {
	v, err := b.current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*BrokerToken, 0, len(v.byID))
	for _, t := range v.byID {
		out = append(out, t)
	}
	return out, nil
}

// ByHMAC finds the token whose HMAC is hmac (nil: none the proxy knows).
func (b *BrokerTokens) ByHMAC(ctx context.Context, mac []byte) (*BrokerToken, error) {
	v, err := b.current(ctx)
	if err != nil {
		return nil, err
	}
	return v.byHMAC[string(mac)], nil
}

// LookupToken implements sasl.TokenLookup for token logins: the token must
// be one the brokers describe (at most MaxAge ago) whose HMAC is the
// configured key's. Its SCRAM credential is derived from the HMAC at its
// first login per mechanism, then kept until the token is gone.
func (b *BrokerTokens) LookupToken(ctx context.Context, mech sasl.Mechanism, id string) (sasl.TokenCredential, error) {
	if mech.HashSize() == 0 {
		return sasl.TokenCredential{}, sasl.ErrUnknownCredential
	}
	v, err := b.current(ctx)
	if err != nil {
		return sasl.TokenCredential{}, err
	}
	t := v.byID[id]
	if t == nil || !t.keyOK {
		return sasl.TokenCredential{}, sasl.ErrUnknownCredential
	}
	c, err := b.credential(t, mech)
	if err != nil {
		return sasl.TokenCredential{}, fmt.Errorf("token credential: %w", err)
	}
	return sasl.TokenCredential{Credential: c, OwnerName: t.Owner.Name, Expiry: t.Expiry, MaxExpiry: t.Max}, nil
}

func (b *BrokerTokens) credential(t *BrokerToken, mech sasl.Mechanism) (sasl.Credential, error) {
	b.credMu.Lock()
	tc := b.creds[t.ID]
	if tc == nil {
		tc = &tokenCreds{m: map[sasl.Mechanism]sasl.Credential{}}
		b.creds[t.ID] = tc
	}
	b.credMu.Unlock()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if c, ok := tc.m[mech]; ok {
		return c, nil
	}
	salt, err := kafkaSalt(b.o.Rand)
	if err != nil {
		return sasl.Credential{}, err
	}
	c, err := sasl.DeriveCredential(mech, base64.StdEncoding.EncodeToString(t.HMAC), salt, sasl.MinIterations)
	if err != nil {
		return sasl.Credential{}, err
	}
	tc.m[mech] = c
	return c, nil
}

// kafkaSalt is the form of a Kafka broker's salts: the UTF-8 bytes of a
// random 130-bit number written in base 36.
func kafkaSalt(r io.Reader) ([]byte, error) {
	var buf [17]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return nil, err
	}
	buf[0] &= 0x03
	return []byte(new(big.Int).SetBytes(buf[:]).Text(36)), nil
}

// LoginIdentity is the upstream identity of a client that logged in at the
// proxy with broker token tokenID: the same token.
func (b *BrokerTokens) LoginIdentity(tokenID string) Identity {
	return Identity{Mechanism: b.o.Mechanism, Username: tokenID,
		Password: base64.StdEncoding.EncodeToString(dtoken.HMAC(b.o.SecretKey, tokenID)), Token: true}
}

// Create asks the brokers for a token owned by owner, renewable by
// renewers and by the proxy itself (so that it can renew and expire it on
// its owner's behalf). maxLifetimeMillis <= 0 means the brokers' maximum.
// The answer is the brokers'; its requester is the proxy and is for the
// caller to replace. A token created is logged for audit (caller, owner,
// token id, expiry; never the HMAC).
func (b *BrokerTokens) Create(ctx context.Context, caller, owner dtoken.Principal, renewers []dtoken.Principal, maxLifetimeMillis int64) (*kmsg.CreateDelegationTokenResponse, error) {
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	req.SetVersion(3)
	req.OwnerPrincipalType, req.OwnerPrincipalName = kmsg.StringPtr(owner.Type), kmsg.StringPtr(owner.Name)
	for _, p := range append(append([]dtoken.Principal(nil), renewers...), b.self) {
		r := kmsg.NewCreateDelegationTokenRequestRenewer()
		r.PrincipalType, r.PrincipalName = p.Type, p.Name
		req.Renewers = append(req.Renewers, r)
	}
	req.MaxLifetimeMillis = maxLifetimeMillis
	resp, err := roundTripAsProxy(ctx, b.o.Dial, req)
	if err != nil {
		return nil, fmt.Errorf("create delegation token for %s: %w", owner, err)
	}
	b.invalidate()
	cr := resp.(*kmsg.CreateDelegationTokenResponse)
	if cr.ErrorCode == 0 {
		b.o.Logger.Info("broker token created", zap.Bool("audit", true), zap.String("principal", caller.String()),
			zap.String("owner", owner.String()), zap.String("token_id", cr.TokenID),
			zap.Time("expiry", time.UnixMilli(cr.ExpiryTimestamp)), zap.Time("max_lifetime", time.UnixMilli(cr.MaxTimestamp)))
	}
	return cr, nil
}

// Renew asks the brokers to renew the token with mac for periodMillis
// (<= 0: their default) and returns their error code and new expiry.
func (b *BrokerTokens) Renew(ctx context.Context, mac []byte, periodMillis int64) (int16, int64, error) {
	req := kmsg.NewPtrRenewDelegationTokenRequest()
	req.SetVersion(2)
	req.HMAC, req.RenewTimeMillis = mac, periodMillis
	resp, err := roundTripAsProxy(ctx, b.o.Dial, req)
	if err != nil {
		return 0, 0, fmt.Errorf("renew delegation token: %w", err)
	}
	b.invalidate()
	rr := resp.(*kmsg.RenewDelegationTokenResponse)
	return rr.ErrorCode, rr.ExpiryTimestamp, nil
}

// Expire asks the brokers to expire the token with mac in periodMillis
// (negative: at once) and returns their error code and new expiry.
func (b *BrokerTokens) Expire(ctx context.Context, mac []byte, periodMillis int64) (int16, int64, error) {
	req := kmsg.NewPtrExpireDelegationTokenRequest()
	req.SetVersion(2)
	req.HMAC, req.ExpiryPeriodMillis = mac, periodMillis
	resp, err := roundTripAsProxy(ctx, b.o.Dial, req)
	if err != nil {
		return 0, 0, fmt.Errorf("expire delegation token: %w", err)
	}
	b.invalidate()
	er := resp.(*kmsg.ExpireDelegationTokenResponse)
	return er.ErrorCode, er.ExpiryTimestamp, nil
}

// roundTripAsProxy sends one request on a new connection as the proxy's
// identity.
func roundTripAsProxy(ctx context.Context, d ConnDialer, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := dialBound(ctx, d)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return roundTrip(conn, 1, req)
}
