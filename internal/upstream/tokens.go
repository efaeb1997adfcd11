package upstream

// Per-principal broker delegation tokens (upstream.principal_mode: client).
// The proxy's own identity creates, for each client principal, a token owned
// by that principal (CreateDelegationToken v3 with an owner, KIP-373) and
// logs the principal's upstream connections in with it (SCRAM with
// tokenauth=true), so the brokers' ACLs and quotas see the client. Tokens
// live in memory only.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// TokenMetrics receives the per-principal token counters. Implementations
// must be safe for concurrent use.
type TokenMetrics interface {
	// UpstreamTokensHeld is the number of principals holding a token.
	UpstreamTokensHeld(n int)
	// UpstreamToken counts one event: "created", "renewed" or "failed".
	UpstreamToken(event string)
}

type nopTokenMetrics struct{}

func (nopTokenMetrics) UpstreamTokensHeld(int) {}
func (nopTokenMetrics) UpstreamToken(string)   {}

// RefusedError is a broker's refusal of a token for a principal: the
// principal cannot act upstream as itself.
type RefusedError struct {
	Principal string
	Err       error // a kerr.Error, or why the principal cannot own a token
}

func (e *RefusedError) Error() string {
	return "the brokers refused a delegation token for " + e.Principal + ": " + e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

// TokensOptions configures Tokens.
type TokensOptions struct {
	// Dial opens connections authenticated as the proxy's own identity
	// (principal ""), which creates and renews the tokens.
	Dial ConnDialer
	// Requester is the proxy's own principal name at the brokers (its
	// upstream.sasl user): named renewer of every token it creates.
	Requester string
	// Mechanism is the SCRAM mechanism of token logins (SCRAM-SHA-512 or
	// SCRAM-SHA-256).
	Mechanism string
	Logger    *zap.Logger      // nil: no logs
	Metrics   TokenMetrics     // nil: none
	Now       func() time.Time // nil: time.Now
}

// Tokens keeps one broker delegation token per client principal. It is
// safe for concurrent use; concurrent first requests of one principal
// create one token.
type Tokens struct {
	o TokensOptions

	mu   sync.Mutex
	held map[string]*principalToken
}

// principalToken is one principal's slot. sem (capacity 1) serialises the
// calls that create or renew its token; tok is read and written only by
// the holder of sem.
type principalToken struct {
	sem chan struct{}
	tok *brokerToken
}

// brokerToken is a token as the broker described it. hmac is secret.
type brokerToken struct {
	id      string
	hmac    []byte
	created time.Time
	expiry  time.Time
	max     time.Time
	period  time.Duration // the expiry period the broker granted at creation
	renewAt time.Time
}

// NewTokens returns an empty per-principal token store.
func NewTokens(o TokensOptions) *Tokens {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = nopTokenMetrics{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tokens{o: o, held: map[string]*principalToken{}}
}

// Identity returns the upstream identity principal ("User:<name>") logs in
// with: its current token, created or renewed first when due. A broker's
// refusal is a *RefusedError; other errors are transport failures.
func (t *Tokens) Identity(ctx context.Context, principal string) (Identity, error) {
	tok, err := t.token(ctx, principal)
	if err != nil {
		return Identity{}, err
	}
	return t.identity(tok), nil
}

func (t *Tokens) identity(tok *brokerToken) Identity {
	// Kafka's clients send the token's HMAC in base64 as the password, and
	// the brokers derive the token's SCRAM credential from that string.
	return Identity{Mechanism: t.o.Mechanism, Username: tok.id,
		Password: base64.StdEncoding.EncodeToString(tok.hmac), Token: true}
}

func (t *Tokens) slot(principal string) *principalToken {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.held[principal]
	if p == nil {
		p = &principalToken{sem: make(chan struct{}, 1)}
		t.held[principal] = p
	}
	return p
}

func (t *Tokens) token(ctx context.Context, principal string) (*brokerToken, error) {
	p := t.slot(principal)
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.sem }()
	now := t.o.Now()
	switch tok := p.tok; {
	case tok == nil || tok.stale(now):
		return t.create(ctx, p, principal)
	case !now.Before(tok.renewAt):
		err := t.renew(ctx, tok)
		if err == nil {
			return tok, nil
		}
		var re *RefusedError
		if errors.As(err, &re) {
			// Expired or removed at the brokers: start over.
			t.o.Logger.Info("upstream token renewal refused; creating a new one",
				zap.String("principal", principal), zap.String("token_id", tok.id), zap.Error(err))
			return t.create(ctx, p, principal)
		}
		t.o.Logger.Warn("upstream token renewal failed; the token stays in use until it is due again",
			zap.String("principal", principal), zap.String("token_id", tok.id), zap.Error(err))
		tok.renewAt = now.Add(min(tok.period/20, time.Minute))
		return tok, nil
	default:
		return tok, nil
	}
}

// stale: too close to its expiry, or to its maximum lifetime for renewals
// to keep it useful, so a new token replaces it.
func (b *brokerToken) stale(now time.Time) bool {
	return !now.Before(b.expiry.Add(-b.period/10)) || !now.Before(b.max.Add(-b.period/4))
}

// Forget drops principal's token if it is still tokenID (the brokers
// refused a login with it), so the next use creates a new one.
func (t *Tokens) Forget(principal, tokenID string) {
	p := t.slot(principal)
	p.sem <- struct{}{}
	if p.tok != nil && p.tok.id == tokenID {
		p.tok = nil
		t.o.Metrics.UpstreamTokensHeld(t.count())
	}
	<-p.sem
}

// Age is how long ago principal's current token tokenID was created (false:
// it is not the current token).
func (t *Tokens) Age(principal, tokenID string) (time.Duration, bool) {
	p := t.slot(principal)
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	if p.tok == nil || p.tok.id != tokenID {
		return 0, false
	}
	return t.o.Now().Sub(p.tok.created), true
}

func (t *Tokens) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.held {
		if p.tok != nil {
			n++
		}
	}
	return n
}

// create asks the brokers for a new token owned by principal.
func (t *Tokens) create(ctx context.Context, p *principalToken, principal string) (*brokerToken, error) {
	tok, err := t.request(ctx, principal)
	if err != nil {
		t.o.Metrics.UpstreamToken("failed")
		return nil, err
	}
	p.tok = tok
	t.o.Metrics.UpstreamToken("created")
	t.o.Metrics.UpstreamTokensHeld(t.count())
	t.o.Logger.Info("upstream token created", zap.Bool("audit", true), zap.String("principal", principal),
		zap.String("token_id", tok.id), zap.Time("expiry", tok.expiry), zap.Time("max_lifetime", tok.max))
	return tok, nil
}

// request sends CreateDelegationToken v3 for owner principal, naming the
// proxy's own principal as a renewer.
func (t *Tokens) request(ctx context.Context, principal string) (*brokerToken, error) {
	typ, name, ok := strings.Cut(principal, ":")
	if !ok || typ != "User" || name == "" {
		return nil, &RefusedError{Principal: principal, Err: errors.New("only User principals can own delegation tokens")}
	}
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	req.SetVersion(3)
	req.OwnerPrincipalType, req.OwnerPrincipalName = kmsg.StringPtr("User"), kmsg.StringPtr(name)
	r := kmsg.NewCreateDelegationTokenRequestRenewer()
	r.PrincipalType, r.PrincipalName = "User", t.o.Requester
	req.Renewers = []kmsg.CreateDelegationTokenRequestRenewer{r}
	req.MaxLifetimeMillis = -1 // the brokers' delegation.token.max.lifetime.ms
	resp, err := t.roundTrip(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create delegation token for %s: %w", principal, err)
	}
	cr := resp.(*kmsg.CreateDelegationTokenResponse)
	if err := kerr.ErrorForCode(cr.ErrorCode); err != nil {
		return nil, &RefusedError{Principal: principal, Err: err}
	}
	if cr.TokenID == "" || len(cr.HMAC) == 0 {
		return nil, fmt.Errorf("create delegation token for %s: the broker returned no token", principal)
	}
	now := t.o.Now()
	issue, expiry := time.UnixMilli(cr.IssueTimestamp), time.UnixMilli(cr.ExpiryTimestamp)
	period := expiry.Sub(issue)
	if period <= 0 {
		return nil, fmt.Errorf("create delegation token for %s: expiry %v is not after issue %v", principal, expiry, issue)
	}
	return &brokerToken{id: cr.TokenID, hmac: cr.HMAC, created: now, expiry: expiry,
		max: time.UnixMilli(cr.MaxTimestamp), period: period, renewAt: now.Add(period / 2)}, nil
}

// renew extends tok by the brokers' default expiry period.
func (t *Tokens) renew(ctx context.Context, tok *brokerToken) error {
	req := kmsg.NewPtrRenewDelegationTokenRequest()
	req.SetVersion(2)
	req.HMAC = tok.hmac
	req.RenewTimeMillis = -1
	resp, err := t.roundTrip(ctx, req)
	if err != nil {
		t.o.Metrics.UpstreamToken("failed")
		return fmt.Errorf("renew delegation token %s: %w", tok.id, err)
	}
	rr := resp.(*kmsg.RenewDelegationTokenResponse)
	if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
		t.o.Metrics.UpstreamToken("failed")
		return &RefusedError{Principal: "token " + tok.id, Err: err}
	}
	now := t.o.Now()
	tok.expiry = time.UnixMilli(rr.ExpiryTimestamp)
	tok.renewAt = now.Add(tok.period / 2)
	t.o.Metrics.UpstreamToken("renewed")
	return nil
}

// expire ends tok at the brokers at once.
func (t *Tokens) expire(ctx context.Context, tok *brokerToken) error {
	req := kmsg.NewPtrExpireDelegationTokenRequest()
	req.SetVersion(2)
	req.HMAC = tok.hmac
	req.ExpiryPeriodMillis = -1
	resp, err := t.roundTrip(ctx, req)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.(*kmsg.ExpireDelegationTokenResponse).ErrorCode)
}

// expireNew expires a token just created. On a cluster of several nodes
// the expire may reach a node that has not yet applied the creation and
// answers DELEGATION_TOKEN_NOT_FOUND; that answer is retried for a short
// while (newTokenSettle) before it is believed.
func (t *Tokens) expireNew(ctx context.Context, tok *brokerToken) error {
	deadline := time.Now().Add(newTokenSettle)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		err := t.expire(ctx, tok)
		if !errors.Is(err, kerr.DelegationTokenNotFound) || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return err
		}
	}
}

// newTokenSettle bounds how long expireNew waits for a new token to reach
// every node.
const newTokenSettle = 5 * time.Second

// roundTrip sends one request on a new connection as the proxy's identity.
func (t *Tokens) roundTrip(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return roundTripAsProxy(ctx, t.o.Dial, req)
}

// checkPrincipal owns the token Check creates and expires at once.
const checkPrincipal = "User:scram-proxy-start-check"

// Check tells whether the proxy's identity may create tokens for other
// users: it creates a token owned by a user no client is (checkPrincipal)
// and expires it at once. The error says what is missing.
func (t *Tokens) Check(ctx context.Context) error {
	tok, err := t.request(ctx, checkPrincipal)
	var re *RefusedError
	refused := errors.As(err, &re)
	switch {
	case err == nil:
		if err := t.expireNew(ctx, tok); err != nil {
			t.o.Logger.Warn("the start-up check's delegation token could not be expired; it lapses by itself",
				zap.String("token_id", tok.id), zap.Error(err))
		}
		return nil
	case errors.Is(err, kerr.DelegationTokenAuthorizationFailed):
		return fmt.Errorf("upstream.principal_mode is client but the proxy's upstream identity User:%s may not create delegation tokens for other users "+
			"(the broker answered %s for owner %s): make it a super user, or grant it CreateTokens on the users "+
			"(kafka-acls --add --allow-principal User:%s --operation CreateTokens --user-principal 'User:*')",
			t.o.Requester, re.Err.Error(), checkPrincipal, t.o.Requester)
	case errors.Is(err, kerr.DelegationTokenAuthDisabled):
		return errors.New("upstream.principal_mode is client but the brokers have delegation tokens disabled: set delegation.token.secret.key on every broker")
	case errors.Is(err, kerr.DelegationTokenRequestNotAllowed):
		return fmt.Errorf("upstream.principal_mode is client but the brokers do not let User:%s create tokens on its listener (a token login, or not a SASL listener)", t.o.Requester)
	case errors.Is(err, kerr.UnsupportedVersion):
		return errors.New("upstream.principal_mode is client but the brokers do not support CreateDelegationToken with an owner (KIP-373, Kafka 3.3 or later)")
	case refused:
		return fmt.Errorf("upstream.principal_mode is client but the brokers refused the proxy's test token: %w", err)
	}
	return fmt.Errorf("upstream.principal_mode is client; the start-up check of the proxy's right to create delegation tokens failed: %w", err)
}
