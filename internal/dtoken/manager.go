package dtoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Options configures a Manager. Defaults are Kafka's.
type Options struct {
	// SecretKey is delegation.token.secret.key (formerly master.key); empty
	// disables tokens (error 61).
	SecretKey     string
	MaxLifetime   time.Duration // delegation.token.max.lifetime.ms, default 7 d
	ExpiryTime    time.Duration // delegation.token.expiry.time.ms, default 24 h
	CheckInterval time.Duration // delegation.token.expiry.check.interval.ms, default 1 h
	// MaxPerOwner bounds the live tokens one owner may hold (default
	// DefaultMaxPerOwner); creating one more is ErrTooManyTokens. Kafka
	// has no such limit: every token costs key derivations, a disk sync
	// and memory, so an unbounded number is a way to exhaust them.
	MaxPerOwner int
	Store       TokenStore // default: in memory
	// SuperUsers ("User:admin") may create tokens for other owners and
	// describe every token.
	SuperUsers []string
	Now        func() time.Time
	Rand       io.Reader

	_ struct{}
}

// DefaultMaxPerOwner is Options.MaxPerOwner's default.
const DefaultMaxPerOwner = 100

// entry is a cached token: its metadata plus what is derived from the key.
// info and hmac are guarded by Manager.mu; creds by the entry's own mu, so
// a derivation at first login never holds the manager's lock.
type entry struct {
	info Info
	hmac []byte

	mu    sync.Mutex
	creds map[sasl.Mechanism]sasl.Credential // parsed or derived on first use
}

// Manager owns the token cache. It is safe for concurrent use.
type Manager struct {
	o        Options
	super    map[Principal]bool
	keyCheck []byte

	// createMu serializes Create: the owner's count is checked and the
	// token persisted as one step, so parallel requests cannot overshoot
	// MaxPerOwner, and a flood of creates runs their key derivations one
	// at a time. Logins and the other operations never wait for it.
	createMu sync.Mutex

	mu      sync.RWMutex
	byID    map[string]*entry
	byHMAC  map[string]string             // base64(hmac) → id
	byOwner map[Principal]map[string]bool // owner → ids
}

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

// New loads the persisted tokens' metadata. It derives nothing: each
// token's SCRAM credentials were stored when it was issued and are parsed at
// its first login (or derived then, for records without them), so start-up
// costs one HMAC per token, not key derivations.
func New(o Options) (*Manager, error) {
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = 7 * 24 * time.Hour
	}
	if o.ExpiryTime <= 0 {
		o.ExpiryTime = 24 * time.Hour
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Hour
	}
	if o.Store == nil {
		o.Store = NewMemStore()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.MaxPerOwner <= 0 {
		o.MaxPerOwner = DefaultMaxPerOwner
	}
	m := &Manager{o: o, super: map[Principal]bool{}, byID: map[string]*entry{}, byHMAC: map[string]string{},
		byOwner: map[Principal]map[string]bool{}}
	for _, s := range o.SuperUsers {
		p, err := ParsePrincipal(s)
		if err != nil {
			return nil, err
		}
		m.super[p] = true
	}
	if !m.Enabled() {
		return m, nil
	}
	m.keyCheck = keyCheck(o.SecretKey)
	infos, err := o.Store.LoadTokens()
	if err != nil {
		return nil, fmt.Errorf("load delegation tokens: %w", err)
	}
	for _, i := range infos {
		m.add(&entry{info: i, hmac: HMAC(o.SecretKey, i.ID)})
	}
	return m, nil
}

// Enabled reports whether a secret key is configured.
func (m *Manager) Enabled() bool { return m.o.SecretKey != "" }

// Len is the number of cached tokens.
func (m *Manager) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}

// deriveCredentials derives one SCRAM credential per mechanism with a fresh
// salt and 4096 iterations, password base64(HMAC)
// (DelegationTokenManager.prepareScramCredentials).
func (m *Manager) deriveCredentials(hmac []byte) (map[sasl.Mechanism]sasl.Credential, error) {
	creds := map[sasl.Mechanism]sasl.Credential{}
	for _, mech := range sasl.Mechanisms() {
		c, err := m.derive(hmac, mech)
		if err != nil {
			return nil, err
		}
		creds[mech] = c
	}
	return creds, nil
}

func (m *Manager) derive(hmac []byte, mech sasl.Mechanism) (sasl.Credential, error) {
	salt, err := kafkaSalt(m.o.Rand)
	if err != nil {
		return sasl.Credential{}, err
	}
	return sasl.DeriveCredential(mech, base64.StdEncoding.EncodeToString(hmac), salt, sasl.MinIterations)
}

// credential returns e's credential for mech: parsed from the stored form
// when info (e's metadata, read under the manager's lock) has one derived
// under the current key, else derived now (once per token and process: a
// record from an older version, or a key change). Safe for concurrent use;
// the manager's lock is not held.
func (m *Manager) credential(e *entry, info Info, mech sasl.Mechanism) (sasl.Credential, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.creds[mech]; ok {
		return c, nil
	}
	if e.creds == nil {
		e.creds = map[sasl.Mechanism]sasl.Credential{}
	}
	if form, ok := info.Credentials[mech]; ok && hmac.Equal(info.KeyCheck, m.keyCheck) {
		if c, err := sasl.ParseStoredForm(mech, form); err == nil {
			e.creds[mech] = c
			return c, nil
		}
	}
	c, err := m.derive(e.hmac, mech)
	if err != nil {
		return sasl.Credential{}, err
	}
	e.creds[mech] = c
	return c, nil
}

// kafkaSalt is ScramFormatter.secureRandomBytes: the UTF-8 bytes of a random
// 130-bit number written in base 36.
func kafkaSalt(r io.Reader) ([]byte, error) {
	var b [17]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, err
	}
	b[0] &= 0x03
	return []byte(new(big.Int).SetBytes(b[:]).Text(36)), nil
}

func (m *Manager) add(e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[e.info.ID] = e
	m.byHMAC[base64.StdEncoding.EncodeToString(e.hmac)] = e.info.ID
	ids := m.byOwner[e.info.Owner]
	if ids == nil {
		ids = map[string]bool{}
		m.byOwner[e.info.Owner] = ids
	}
	ids[e.info.ID] = true
}

func (m *Manager) remove(id string) {
	e, ok := m.byID[id]
	if !ok {
		return
	}
	delete(m.byID, id)
	delete(m.byHMAC, base64.StdEncoding.EncodeToString(e.hmac))
	delete(m.byOwner[e.info.Owner], id)
	if len(m.byOwner[e.info.Owner]) == 0 {
		delete(m.byOwner, e.info.Owner)
	}
}

// live counts owner's tokens that have not expired (expired ones await the
// sweep and do not count).
func (m *Manager) live(owner Principal, now time.Time) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for id := range m.byOwner[owner] {
		if !m.byID[id].info.expired(now) {
			n++
		}
	}
	return n
}

// LookupToken implements sasl.TokenLookup for tokenauth logins.
func (m *Manager) LookupToken(_ context.Context, mech sasl.Mechanism, id string) (sasl.TokenCredential, error) {
	if !m.Enabled() || mech.HashSize() == 0 {
		return sasl.TokenCredential{}, sasl.ErrUnknownCredential
	}
	m.mu.RLock()
	e, ok := m.byID[id]
	var info Info
	if ok {
		info = e.info
	}
	m.mu.RUnlock()
	if !ok {
		return sasl.TokenCredential{}, sasl.ErrUnknownCredential
	}
	c, err := m.credential(e, info, mech)
	if err != nil {
		return sasl.TokenCredential{}, fmt.Errorf("token credential: %w", err)
	}
	return sasl.TokenCredential{Credential: c, OwnerName: info.Owner.Name, Expiry: info.Expiry, MaxExpiry: info.Max}, nil
}

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
// the caller owns it. The token's SCRAM credentials are derived here, once,
// and stored with it.
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
	m.createMu.Lock()
	defer m.createMu.Unlock()
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
	info := Info{ID: id, Owner: owner, Requester: c.Principal, Renewers: append([]Principal(nil), renewers...),
		Issue: now, Max: now.Add(life), KeyCheck: m.keyCheck}
	info.Expiry = minTime(info.Max, now.Add(m.o.ExpiryTime))
	e := &entry{hmac: HMAC(m.o.SecretKey, id)}
	if e.creds, err = m.deriveCredentials(e.hmac); err != nil {
		return out, err
	}
	info.Credentials = map[sasl.Mechanism]string{}
	for mech, c := range e.creds {
		info.Credentials[mech] = c.StoredForm()
	}
	e.info = info
	if err := m.o.Store.PutToken(info); err != nil {
		return out, fmt.Errorf("persist delegation token: %w", err)
	}
	m.add(e)
	out.Token, out.HMAC = info, e.hmac
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

// change runs fn on the token with hmac under the write lock, after the
// checks Renew and Expire share, in Kafka's order: ErrRequestNotAllowed,
// ErrDisabled, ErrNotFound.
func (m *Manager) change(c Caller, hmac []byte, fn func(e *entry, now time.Time) (time.Time, error)) (time.Time, error) {
	if !c.allowed() {
		return time.Time{}, ErrRequestNotAllowed
	}
	if !m.Enabled() {
		return time.Time{}, ErrDisabled
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.byHMACLocked(hmac)
	if e == nil {
		return time.Time{}, ErrNotFound
	}
	return fn(e, m.o.Now())
}

// setExpiry persists a token's new expiry, then applies it.
func (m *Manager) setExpiry(e *entry, expiry time.Time) (time.Time, error) {
	info := e.info
	info.Expiry = expiry
	if err := m.o.Store.PutToken(info); err != nil {
		return time.Time{}, fmt.Errorf("persist delegation token: %w", err)
	}
	e.info = info
	return expiry, nil
}

// Renew extends a token's expiry and returns the new one
// (RenewDelegationToken, KRaft order: the checks of change, then
// ErrExpired, ErrOwnerMismatch). The period is capped at the expiry time;
// <= 0 means that cap.
func (m *Manager) Renew(c Caller, hmac []byte, period time.Duration) (time.Time, error) {
	return m.change(c, hmac, func(e *entry, now time.Time) (time.Time, error) {
		switch {
		case e.info.expired(now):
			return time.Time{}, ErrExpired
		case !e.info.ownerOrRenewer(c.Principal):
			return time.Time{}, ErrOwnerMismatch
		}
		if period <= 0 {
			period = m.o.ExpiryTime
		}
		return m.setExpiry(e, minTime(e.info.Max, now.Add(min(period, m.o.ExpiryTime))))
	})
}

// Expire shortens or ends a token and returns its new expiry
// (ExpireDelegationToken, order: the checks of change, ErrOwnerMismatch,
// then ErrExpired). A negative period removes it at once, the admin tools'
// default.
func (m *Manager) Expire(c Caller, hmac []byte, period time.Duration) (time.Time, error) {
	return m.change(c, hmac, func(e *entry, now time.Time) (time.Time, error) {
		switch {
		case !e.info.ownerOrRenewer(c.Principal):
			return time.Time{}, ErrOwnerMismatch
		case period < 0:
			if err := m.o.Store.DeleteToken(e.info.ID); err != nil {
				return time.Time{}, fmt.Errorf("delete delegation token: %w", err)
			}
			m.remove(e.info.ID)
			return now, nil
		case e.info.expired(now):
			return time.Time{}, ErrExpired
		}
		return m.setExpiry(e, minTime(e.info.Max, now.Add(period)))
	})
}

func (m *Manager) byHMACLocked(hmac []byte) *entry {
	id, ok := m.byHMAC[base64.StdEncoding.EncodeToString(hmac)]
	if !ok {
		return nil
	}
	return m.byID[id]
}

// Described is one token in a Describe answer, with its HMAC.
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
		i := e.info
		if owners != nil && !matchesAny(i, owners) {
			continue
		}
		if i.ownerOrRenewer(c.Principal) || i.Requester == c.Principal || m.super[c.Principal] {
			out = append(out, Described{Info: i, HMAC: e.hmac})
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

// Sweep removes tokens past their expiry or max timestamp and returns how
// many it removed. Live connections authenticated by them are not closed:
// their session deadlines were fixed at login.
func (m *Manager) Sweep() (int, error) {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	n := 0
	for id, e := range m.byID {
		if !e.info.expired(now) {
			continue
		}
		if err := m.o.Store.DeleteToken(id); err != nil {
			errs = append(errs, err)
			continue
		}
		m.remove(id)
		n++
	}
	return n, errors.Join(errs...)
}

// Run sweeps every CheckInterval until ctx ends. onSweep, if set, hears of
// each sweep's result.
func (m *Manager) Run(ctx context.Context, onSweep func(removed int, err error)) {
	t := time.NewTicker(m.o.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := m.Sweep()
			if onSweep != nil {
				onSweep(n, err)
			}
		}
	}
}
