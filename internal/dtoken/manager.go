package dtoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/poll"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Options configures a Manager. Defaults are Kafka's.
type Options struct {
	// Keys are the secret keys tokens are minted and checked with, in
	// order: the first mints every new token, and each listed key keeps
	// validating the tokens it minted (a token records its key). None
	// disables tokens (error 61). See Key.
	Keys []Key
	// SecretKey is delegation.token.secret.key (formerly master.key), the
	// one-key form of Keys: Keys{{ID: DefaultKeyID, Secret: SecretKey}}.
	// Set Keys or SecretKey, not both.
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
	// KeyTokens, if set, hears the number of cached tokens per key id
	// whenever it changes, and a 0 for each listed key at start (so an
	// unused key shows as such). Tokens whose key is not listed are
	// counted under UnlistedKeyID. It is called under the cache lock: it
	// must be quick and must not call the Manager.
	KeyTokens func(keyID string, tokens int)

	_ struct{}
}

// DefaultKeyID is the id of the key given as Options.SecretKey (the
// single-key settings delegation_tokens.master_key, secret_key and
// master_key_file).
const DefaultKeyID = "default"

// UnlistedKeyID is what Options.KeyTokens calls the key of tokens minted
// under a key that is no longer listed. It is not a valid key id.
const UnlistedKeyID = "(unlisted)"

// Key is one token secret key. ID names it in the tokens it mints and in
// metrics; it may be anything but empty or UnlistedKeyID, and two keys may
// share neither id nor secret. Secret is used as Kafka uses
// delegation.token.secret.key: its UTF-8 bytes key the HMAC-SHA512 of each
// token id.
type Key struct {
	ID     string
	Secret string

	_ struct{}
}

// String leaves out the secret.
func (k Key) String() string { return "dtoken.Key{ID: " + k.ID + "}" }

// GoString leaves out the secret.
func (k Key) GoString() string { return k.String() }

// tokenKey is a listed key with its fingerprint.
type tokenKey struct {
	id     string
	secret string
	check  []byte    // keyCheck(secret)
	macs   sync.Pool // of HMAC-SHA512 keyed with secret, reset between uses
}

// hmac is HMAC(k.secret, tokenID).
func (k *tokenKey) hmac(tokenID string) []byte {
	var sum [sha512.Size]byte
	k.hmacInto(&sum, tokenID)
	return sum[:]
}

// hmacInto is HMAC(k.secret, tokenID) into dst. A pooled keyed hash resets
// to its keyed state instead of hashing the key again, about half the
// work: this runs once per token at start.
func (k *tokenKey) hmacInto(dst *[sha512.Size]byte, tokenID string) {
	h, _ := k.macs.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha512.New, []byte(k.secret))
	} else {
		h.Reset()
	}
	io.WriteString(h, tokenID)
	h.Sum(dst[:0])
	k.macs.Put(h)
}

// DefaultMaxPerOwner is Options.MaxPerOwner's default.
const DefaultMaxPerOwner = 100

// entry is a cached token. It is never modified once in the cache: a
// change replaces it. A large cache is what the garbage collector marks on
// every cycle, so an entry is built to be few objects: its HMAC is inline,
// its principals, key id and key fingerprint share memory with the other
// entries of their owner and key (entry.share), and its stored SCRAM
// credentials are parsed once, at apply, into one sasl.CredentialSet.
type entry struct {
	// info is the token's record without its Credentials, which are in
	// stored (record puts them back).
	info Info
	// key is the listed key that minted the token; nil when that key is
	// not listed (the token is then unknown to logins and to the token
	// APIs, and kept only until the sweep removes it). hmac is zero then.
	key  *tokenKey
	hmac [sha512.Size]byte
	// stored holds the credentials of the record derived under key.
	stored sasl.CredentialSet
	// derived is for a record without stored credentials (written by an
	// older version): those are derived at the token's first login with
	// each mechanism, once, and shared with the entry that replaces this
	// one while its record still has none (a renewal).
	derived atomic.Pointer[credCache]
}

// credCache holds a token's derived SCRAM credentials, one slot per
// mechanism (Mechanism.Index). Its own lock keeps a derivation at first
// login off the manager's locks.
type credCache struct {
	mu   sync.Mutex
	have [sasl.NumMechanisms]bool
	c    [sasl.NumMechanisms]sasl.Credential
}

// Manager owns the token cache. It is safe for concurrent use.
//
// Two locks, never nested the other way round: writeMu serializes the
// writers (Create, Renew, Expire, Sweep) across their check, their store
// call and their update of the cache, so the owner limit is checked and
// the token persisted as one step and a flood of creates runs its key
// derivations one at a time; mu guards the cache maps and is held only for
// map operations, never across a store call. A store shared by several
// proxies calls ApplyToken and ForgetToken (which take mu only) from its
// own goroutine, also while a writer waits in PutToken for the store to
// read its write back. Logins take mu's read side only.
type Manager struct {
	o     Options
	super map[Principal]bool
	// keys are the listed keys, the minting key first; keyByHash and
	// keyByID find one by fingerprint and by id.
	keys      []*tokenKey
	keyByHash map[string]*tokenKey
	keyByID   map[string]*tokenKey

	writeMu sync.Mutex

	mu      sync.RWMutex
	byID    map[string]*entry
	byHMAC  map[[sha512.Size]byte]string // hmac → id
	byOwner map[Principal]*ownerTokens
	perKey  map[string]int // KeyTokens label → cached tokens
}

// New loads the persisted tokens' metadata. It derives nothing: each
// token's SCRAM credentials were stored when it was issued and are parsed at
// its first login (or derived then, for records without them), so start-up
// costs one HMAC per token, not key derivations.
func New(o Options) (*Manager, error) {
	if o.SecretKey != "" {
		if len(o.Keys) > 0 {
			return nil, errors.New("dtoken: set Keys or SecretKey, not both")
		}
		o.Keys = []Key{{ID: DefaultKeyID, Secret: o.SecretKey}}
	}
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
	m := &Manager{o: o, super: map[Principal]bool{}, byID: map[string]*entry{}, byHMAC: map[[sha512.Size]byte]string{},
		byOwner: map[Principal]*ownerTokens{}, perKey: map[string]int{},
		keyByHash: map[string]*tokenKey{}, keyByID: map[string]*tokenKey{}}
	for _, k := range o.Keys {
		tk := &tokenKey{id: k.ID, secret: k.Secret, check: keyCheck(k.Secret)}
		switch {
		case k.ID == "" || k.Secret == "":
			return nil, errors.New("dtoken: every key needs an id and a secret")
		case k.ID == UnlistedKeyID:
			return nil, fmt.Errorf("dtoken: %q is not a key id", k.ID)
		case m.keyByID[k.ID] != nil:
			return nil, fmt.Errorf("dtoken: key id %q is listed twice", k.ID)
		case m.keyByHash[string(tk.check)] != nil:
			return nil, fmt.Errorf("dtoken: keys %q and %q have the same secret", m.keyByHash[string(tk.check)].id, k.ID)
		}
		m.keys = append(m.keys, tk)
		m.keyByID[k.ID] = tk
		m.keyByHash[string(tk.check)] = tk
	}
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
	if o.KeyTokens != nil {
		for _, k := range m.keys {
			o.KeyTokens(k.id, 0)
		}
	}
	infos, err := o.Store.LoadTokens()
	if err != nil {
		return nil, fmt.Errorf("load delegation tokens: %w", err)
	}
	m.byID, m.byHMAC = make(map[string]*entry, len(infos)), make(map[[sha512.Size]byte]string, len(infos))
	for _, i := range infos {
		m.ApplyToken(i)
	}
	return m, nil
}

// Enabled reports whether a secret key is configured.
func (m *Manager) Enabled() bool { return len(m.keys) > 0 }

// keyOf finds the listed key that minted i, nil if it is not listed. The
// key's fingerprint in the record decides (so a key keeps its tokens when
// the operator renames it, and a new secret under an old id does not
// inherit them); a record without one (written before tokens recorded
// their key) goes by its key id, and a record with neither (written by a
// single-key proxy of an older version) belongs to the last listed key: the
// oldest, as rotation lists new keys first.
func (m *Manager) keyOf(i Info) *tokenKey {
	switch {
	case len(i.KeyCheck) > 0:
		return m.keyByHash[string(i.KeyCheck)]
	case i.KeyID != "":
		return m.keyByID[i.KeyID]
	default:
		return m.keys[len(m.keys)-1]
	}
}

// count adjusts the cached tokens of e's key by delta and reports it.
// Called under mu.
func (m *Manager) countLocked(e *entry, delta int) {
	label := UnlistedKeyID
	if e.key != nil {
		label = e.key.id
	}
	m.perKey[label] += delta
	if m.o.KeyTokens != nil {
		m.o.KeyTokens(label, m.perKey[label])
	}
}

// TokensByKey returns the number of cached tokens per key id, every listed
// key included, tokens whose key is not listed under UnlistedKeyID.
func (m *Manager) TokensByKey() map[string]int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]int{}
	for _, k := range m.keys {
		out[k.id] = 0
	}
	for label, n := range m.perKey {
		if n > 0 {
			out[label] = n
		}
	}
	return out
}

// Len is the number of cached tokens.
func (m *Manager) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}

// ApplyToken puts i into the cache, replacing the token with its id if
// there is one. It is how the cache follows its store: the Manager calls it
// after each write the store accepted, and a store shared by several
// proxies calls it for every token record it reads, its own writes
// included. Applying the same record again changes nothing. It costs one
// HMAC, parsing the record's stored credentials and a few map operations,
// and takes only the cache lock, so a store may call it while one of the
// Manager's writers waits in PutToken. A token whose key is not listed is
// kept aside: logins and the token APIs do not find it, the sweep removes
// it when it expires. A disabled Manager ignores it.
func (m *Manager) ApplyToken(i Info) {
	if !m.Enabled() {
		return
	}
	e := &entry{info: i, key: m.keyOf(i)}
	e.info.Credentials = nil
	if e.key != nil {
		e.key.hmacInto(&e.hmac, i.ID)
		e.parseStored(i)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byID[i.ID]; ok {
		if old.key == e.key {
			// What was derived depends on the key and the id only.
			e.derived.Store(old.derived.Load())
		}
		m.removeLocked(i.ID)
	}
	own := m.byOwner[i.Owner]
	if own == nil {
		own = &ownerTokens{owner: canonicalType(i.Owner), ids: map[string]struct{}{}}
		m.byOwner[own.owner] = own
	}
	own.ids[i.ID] = struct{}{}
	e.share(own.owner)
	m.byID[i.ID] = e
	if e.key != nil {
		m.byHMAC[e.hmac] = i.ID
	}
	m.countLocked(e, 1)
}

// ownerTokens is one owner's cached tokens. The entries of those tokens
// share its copy of the owner's principal.
type ownerTokens struct {
	owner Principal
	ids   map[string]struct{}
}

// share points e's principals, key id and key fingerprint at the copies
// other entries hold (owner, the owner's, and e.key's) where they are
// equal, so that a large cache keeps one copy of each instead of one per
// token as decoded. Called before e is in the cache.
func (e *entry) share(owner Principal) {
	e.info.Owner = owner
	if e.info.Requester == owner {
		e.info.Requester = owner
	} else {
		e.info.Requester = canonicalType(e.info.Requester)
	}
	if e.key == nil {
		return
	}
	if e.info.KeyID == e.key.id {
		e.info.KeyID = e.key.id
	}
	if hmac.Equal(e.info.KeyCheck, e.key.check) {
		e.info.KeyCheck = e.key.check
	}
}

// canonicalType returns p with its type "User", the type of every Kafka
// principal in practice, as the one constant string.
func canonicalType(p Principal) Principal {
	if p.Type == "User" {
		p.Type = "User"
	}
	return p
}

// parseStored parses the stored credentials of i, e's record, into e: when
// the record says they were derived under e.key (its key fingerprint). A
// form that does not parse is left out: that mechanism's credential is then
// derived at the token's first login with it, as for a record without
// stored credentials.
func (e *entry) parseStored(i Info) {
	if len(i.Credentials) == 0 || !hmac.Equal(i.KeyCheck, e.key.check) {
		return
	}
	parsed := make(map[sasl.Mechanism]sasl.Credential, len(i.Credentials))
	for mech, form := range i.Credentials {
		if c, err := sasl.ParseStoredForm(mech, form); err == nil {
			parsed[mech] = c
		}
	}
	e.stored = sasl.NewCredentialSet(parsed)
}

// record is e's token as its store holds it: e.info with the stored
// credentials put back (in the proxy's stored form; a form that did not
// parse is not put back).
func (e *entry) record() Info {
	i := e.info
	for _, mech := range sasl.Mechanisms() {
		if c, ok := e.stored.Get(mech); ok {
			if i.Credentials == nil {
				i.Credentials = map[sasl.Mechanism]string{}
			}
			i.Credentials[mech] = c.StoredForm()
		}
	}
	return i
}

// ForgetToken removes the token id from the cache; an unknown id is not an
// error. Like ApplyToken it is idempotent, cheap and takes only the cache
// lock.
func (m *Manager) ForgetToken(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(id)
}

func (m *Manager) removeLocked(id string) {
	e, ok := m.byID[id]
	if !ok {
		return
	}
	delete(m.byID, id)
	if e.key != nil {
		delete(m.byHMAC, e.hmac)
	}
	m.countLocked(e, -1)
	if own := m.byOwner[e.info.Owner]; own != nil {
		delete(own.ids, id)
		if len(own.ids) == 0 {
			delete(m.byOwner, e.info.Owner)
		}
	}
}

// put persists i, then applies it to the cache (unless the store already
// has): the cache never shows a write the store refused.
func (m *Manager) put(i Info) error {
	self := m.storeApplies()
	if err := m.o.Store.PutToken(i); err != nil {
		return fmt.Errorf("persist delegation token: %w", err)
	}
	if !self {
		m.ApplyToken(i)
	}
	return nil
}

// storeApplies asks the store, before each write, whether it will apply
// the write itself (SelfApplying).
func (m *Manager) storeApplies() bool {
	s, ok := m.o.Store.(SelfApplying)
	return ok && s.AppliesWrites()
}

// delete removes token id from the store, then from the cache.
func (m *Manager) delete(id string) error {
	self := m.storeApplies()
	if err := m.o.Store.DeleteToken(id); err != nil {
		return fmt.Errorf("delete delegation token: %w", err)
	}
	if !self {
		m.ForgetToken(id)
	}
	return nil
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

// credential returns e's credential for mech: the one stored with its
// record, else one derived now (once per token and process: a record
// without stored credentials, from an older version). Safe for concurrent
// use; the manager's locks are not held.
func (m *Manager) credential(e *entry, mech sasl.Mechanism) (sasl.Credential, error) {
	slot, ok := mech.Index()
	if !ok {
		return sasl.Credential{}, sasl.ErrUnknownCredential
	}
	if c, ok := e.stored.Get(mech); ok {
		return c, nil
	}
	cache := e.derived.Load()
	if cache == nil {
		if cache = new(credCache); !e.derived.CompareAndSwap(nil, cache) {
			cache = e.derived.Load()
		}
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cache.have[slot] {
		return cache.c[slot], nil
	}
	c, err := m.derive(e.hmac[:], mech)
	if err != nil {
		return sasl.Credential{}, err
	}
	cache.c[slot], cache.have[slot] = c, true
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

// live counts owner's tokens that have not expired (expired ones await the
// sweep and do not count).
func (m *Manager) live(owner Principal, now time.Time) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	own := m.byOwner[owner]
	if own == nil {
		return 0
	}
	for id := range own.ids {
		if e := m.byID[id]; e.key != nil && !e.info.expired(now) {
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
	m.mu.RUnlock()
	if !ok || e.key == nil {
		return sasl.TokenCredential{}, sasl.ErrUnknownCredential
	}
	c, err := m.credential(e, mech)
	if err != nil {
		return sasl.TokenCredential{}, fmt.Errorf("token credential: %w", err)
	}
	i := e.info
	return sasl.TokenCredential{Credential: c, OwnerName: i.Owner.Name, Expiry: i.Expiry, MaxExpiry: i.Max}, nil
}

// byHMAC returns the cached token with hmac, or nil.
func (m *Manager) entryByHMAC(hmac []byte) *entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(hmac) != sha512.Size {
		return nil
	}
	id, ok := m.byHMAC[[sha512.Size]byte(hmac)]
	if !ok {
		return nil
	}
	return m.byID[id]
}

// Sweep removes tokens past their expiry or max timestamp and returns how
// many it removed. Live connections authenticated by them are not closed:
// their session deadlines were fixed at login.
func (m *Manager) Sweep() (int, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := m.o.Now()
	var expired []string
	m.mu.RLock()
	for id, e := range m.byID {
		if e.info.expired(now) {
			expired = append(expired, id)
		}
	}
	m.mu.RUnlock()
	var errs []error
	n := 0
	for _, id := range expired {
		// Still expired? A store shared with other proxies may have
		// applied a renewal since.
		m.mu.RLock()
		e, ok := m.byID[id]
		m.mu.RUnlock()
		if !ok || !e.info.expired(now) {
			continue
		}
		if err := m.delete(id); err != nil {
			errs = append(errs, err)
			continue
		}
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
