package dtoken

// The token operations behind the Kafka APIs (internal/localapi answers
// those): Create, Renew, Expire and Describe, in Kafka's check orders.

import (
	"errors"
	"sort"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// The refusals of the token operations, in the orders Kafka checks them.
// Each is one Kafka error (named in brackets); internal/localapi answers
// them. Any other error a Manager returns is a storage failure.
var (
	// ErrDisabled: no secret key is configured [DELEGATION_TOKEN_AUTH_DISABLED].
	ErrDisabled = errors.New("dtoken: delegation tokens are disabled")
	// ErrNotFound: no token has the HMAC [DELEGATION_TOKEN_NOT_FOUND].
	ErrNotFound = errors.New("dtoken: no token with this hmac")
	// ErrOwnerMismatch: the caller neither owns nor may renew the token
	// [DELEGATION_TOKEN_OWNER_MISMATCH].
	ErrOwnerMismatch = errors.New("dtoken: caller is not the token's owner or renewer")
	// ErrRequestNotAllowed: the connection logged in with a token, and may
	// not manage tokens [DELEGATION_TOKEN_REQUEST_NOT_ALLOWED].
	ErrRequestNotAllowed = errors.New("dtoken: token requests are not allowed on a token-authenticated connection")
	// ErrUnauthorized: only super users create tokens for another owner
	// [DELEGATION_TOKEN_AUTHORIZATION_FAILED].
	ErrUnauthorized = errors.New("dtoken: caller may not create tokens for another owner")
	// ErrExpired: the token is past its expiry [DELEGATION_TOKEN_EXPIRED].
	ErrExpired = errors.New("dtoken: token expired")
	// ErrInvalidPrincipalType: a renewer is not a User [INVALID_PRINCIPAL_TYPE].
	ErrInvalidPrincipalType = errors.New("dtoken: renewers must be User principals")
	// ErrTooManyTokens: the owner already holds MaxPerOwner live tokens
	// [POLICY_VIOLATION]. Kafka has no token limit and so no error for
	// it; POLICY_VIOLATION ("Request parameters do not satisfy the
	// configured policy") is the closest: a configured rule refused the
	// request, and clients treat it as final (PolicyViolationException is
	// not retriable), where THROTTLING_QUOTA_EXCEEDED would invite retries
	// that cannot succeed until one of the owner's tokens expires.
	ErrTooManyTokens = errors.New("dtoken: the owner holds the most live tokens allowed (delegation_tokens.max_per_owner)")
)

// Caller is who sends a token request.
type Caller struct {
	Principal          Principal
	TokenAuthenticated bool
}

// allowed is Kafka's allowTokenRequests for SASL listeners: a connection
// authenticated by a token may not manage tokens.
func (c Caller) allowed() bool { return !c.TokenAuthenticated }

// Created is the outcome of Create. Owner and Requester are set even when
// Create refuses: Kafka's answer names them either way.
type Created struct {
	Owner     Principal
	Requester Principal
	Token     Info
	HMAC      []byte
}

// Create issues a token (CreateDelegationToken, KRaft order:
// ErrRequestNotAllowed, ErrUnauthorized, ErrInvalidPrincipalType,
// ErrDisabled; then the proxy's own ErrTooManyTokens). ownerName "" means
// the caller owns it. The token is minted under the first listed key (its
// HMAC, and the key's id and fingerprint in its record); its SCRAM
// credentials are derived here, once, and stored with it.
func (m *Manager) Create(c Caller, ownerType, ownerName string, renewers []Principal, maxLifetime time.Duration) (Created, error) {
	owner := c.Principal
	if ownerName != "" {
		if ownerType == "" {
			ownerType = "User"
		}
		owner = Principal{Type: ownerType, Name: ownerName}
	}
	out := Created{Owner: owner, Requester: c.Principal}
	switch {
	case !c.allowed():
		return out, ErrRequestNotAllowed
	case owner != c.Principal && !m.super[c.Principal]:
		return out, ErrUnauthorized
	case !allUsers(renewers):
		return out, ErrInvalidPrincipalType
	case !m.Enabled():
		return out, ErrDisabled
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := m.o.Now()
	if m.live(owner, now) >= m.o.MaxPerOwner {
		return out, ErrTooManyTokens
	}
	life := m.o.MaxLifetime
	if maxLifetime > 0 {
		life = min(maxLifetime, m.o.MaxLifetime)
	}
	id, err := NewTokenID(m.o.Rand)
	if err != nil {
		return out, err
	}
	key := m.keys[0]
	info := Info{ID: id, Owner: owner, Requester: c.Principal, Renewers: append([]Principal(nil), renewers...),
		Issue: now, Max: now.Add(life), KeyID: key.id, KeyCheck: key.check}
	info.Expiry = minTime(info.Max, now.Add(m.o.ExpiryTime))
	hmac := key.hmac(id)
	creds, err := m.deriveCredentials(hmac)
	if err != nil {
		return out, err
	}
	info.Credentials = map[sasl.Mechanism]string{}
	for mech, c := range creds {
		info.Credentials[mech] = c.StoredForm()
	}
	if err := m.put(info); err != nil {
		return out, err
	}
	out.Token, out.HMAC = info, hmac
	return out, nil
}

func allUsers(ps []Principal) bool {
	for _, p := range ps {
		if p.Type != "User" {
			return false
		}
	}
	return true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// change runs fn on the token with hmac, after the checks Renew and Expire
// share, in Kafka's order: ErrRequestNotAllowed, ErrDisabled, ErrNotFound.
// It holds the write lock, so fn sees the token as no other writer of this
// Manager can change it meanwhile; fn persists its change through put or
// delete.
func (m *Manager) change(c Caller, hmac []byte, fn func(i Info, now time.Time) (time.Time, error)) (time.Time, error) {
	if !c.allowed() {
		return time.Time{}, ErrRequestNotAllowed
	}
	if !m.Enabled() {
		return time.Time{}, ErrDisabled
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	e := m.entryByHMAC(hmac)
	if e == nil {
		return time.Time{}, ErrNotFound
	}
	return fn(e.record(), m.o.Now())
}

// setExpiry persists a token's new expiry, then applies it. The token keeps
// everything else, its stored credentials and key included.
func (m *Manager) setExpiry(i Info, expiry time.Time) (time.Time, error) {
	i.Expiry = expiry
	if err := m.put(i); err != nil {
		return time.Time{}, err
	}
	return expiry, nil
}

// Renew extends a token's expiry and returns the new one
// (RenewDelegationToken, KRaft order: the checks of change, then
// ErrExpired, ErrOwnerMismatch). The period is capped at the expiry time;
// <= 0 means that cap.
func (m *Manager) Renew(c Caller, hmac []byte, period time.Duration) (time.Time, error) {
	return m.change(c, hmac, func(i Info, now time.Time) (time.Time, error) {
		switch {
		case i.expired(now):
			return time.Time{}, ErrExpired
		case !i.ownerOrRenewer(c.Principal):
			return time.Time{}, ErrOwnerMismatch
		}
		if period <= 0 {
			period = m.o.ExpiryTime
		}
		return m.setExpiry(i, minTime(i.Max, now.Add(min(period, m.o.ExpiryTime))))
	})
}

// Expire shortens or ends a token and returns its new expiry
// (ExpireDelegationToken, order: the checks of change, ErrOwnerMismatch,
// then ErrExpired). A negative period removes it at once, the admin tools'
// default.
func (m *Manager) Expire(c Caller, hmac []byte, period time.Duration) (time.Time, error) {
	return m.change(c, hmac, func(i Info, now time.Time) (time.Time, error) {
		switch {
		case !i.ownerOrRenewer(c.Principal):
			return time.Time{}, ErrOwnerMismatch
		case period < 0:
			if err := m.delete(i.ID); err != nil {
				return time.Time{}, err
			}
			return now, nil
		case i.expired(now):
			return time.Time{}, ErrExpired
		}
		return m.setExpiry(i, minTime(i.Max, now.Add(period)))
	})
}

// Described is one token in a Describe answer, with its HMAC. Info has no
// Credentials (the cache keeps them parsed; the answer has no use for
// them).
type Described struct {
	Info Info
	HMAC []byte
}

// Describe lists the tokens the caller may see (DescribeDelegationToken:
// ErrRequestNotAllowed, ErrDisabled, then filtering). owners nil means every
// token; an empty non-nil slice means none. A caller sees tokens it owns,
// requested or may renew; super users see all. The answer contains HMACs:
// the tokens' passwords.
func (m *Manager) Describe(c Caller, owners []Principal) ([]Described, error) {
	if !c.allowed() {
		return nil, ErrRequestNotAllowed
	}
	if !m.Enabled() {
		return nil, ErrDisabled
	}
	if owners != nil && len(owners) == 0 {
		return []Described{}, nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []Described{}
	for _, e := range m.byID {
		if e.key == nil {
			continue // its key is no longer listed: unknown
		}
		i := e.info
		if owners != nil && !matchesAny(i, owners) {
			continue
		}
		if i.ownerOrRenewer(c.Principal) || i.Requester == c.Principal || m.super[c.Principal] {
			out = append(out, Described{Info: i, HMAC: e.hmac[:]})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Info.Issue.Before(out[b].Info.Issue) })
	return out, nil
}

func matchesAny(i Info, owners []Principal) bool {
	for _, o := range owners {
		if i.ownerOrRenewer(o) || i.Requester == o {
			return true
		}
	}
	return false
}
