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
	"sync"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/poll"
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

func (m *Manager) byHMACLocked(hmac []byte) *entry {
	id, ok := m.byHMAC[base64.StdEncoding.EncodeToString(hmac)]
	if !ok {
		return nil
	}
	return m.byID[id]
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
	poll.Every(ctx, m.o.CheckInterval, func() {
		n, err := m.Sweep()
		if onSweep != nil {
			onSweep(n, err)
		}
	})
}
