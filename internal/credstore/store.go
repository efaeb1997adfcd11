package credstore

import (
	"bytes"
	"context"
	"maps"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Snapshot is an immutable set of credentials, one per (mechanism, user),
// once published to a Store. Users are spread over shards by a hash of
// their name, so that a snapshot with one user changed (with) copies one
// shard and shares the others: a change costs O(users/snapshotShards), not
// O(users).
//
// A shard maps each name to a userCreds by value: per user the garbage
// collector finds two heap objects (the name and one byte array holding
// all of the user's key material) and two pointers in the shard's table,
// whatever the number of mechanisms. Only sasl.Mechanisms() are held; no
// login could use another.
type Snapshot struct {
	shards [snapshotShards]map[string]userCreds // nil: empty
}

const snapshotShards = 256

// shardOf is user's shard: FNV-1a of the name.
func shardOf(user string) int {
	h := uint32(2166136261)
	for i := 0; i < len(user); i++ {
		h ^= uint32(user[i])
		h *= 16777619
	}
	return int(h % snapshotShards)
}

// numMechs is the number of mechanisms a userCreds has room for.
const numMechs = sasl.NumMechanisms

// mechSlot is m's slot in a userCreds; false for a mechanism the store
// does not hold.
func mechSlot(m sasl.Mechanism) (int, bool) { return m.Index() }

// slotMech is mechSlot's inverse.
func slotMech(i int) sasl.Mechanism {
	if i == 0 {
		return sasl.ScramSHA256
	}
	return sasl.ScramSHA512
}

// userCreds is one user's credentials: a slot per mechanism, and keys,
// every set slot's salt, stored key and server key back to back, slot by
// slot. A userCreds is never modified once built (a change builds a new
// one with its own keys), so snapshots share it freely. At least one slot
// is set in any held by a Snapshot.
type userCreds struct {
	keys  []byte
	slots [numMechs]credSlot
}

// credSlot is one mechanism's credential within a userCreds: its
// iterations and the lengths of its three byte strings in keys.
type credSlot struct {
	iterations                 int
	salt, storedKey, serverKey uint32
	set                        bool
}

// credSet is one user's credentials by slot, unpacked.
type credSet struct {
	cred [numMechs]sasl.Credential
	has  [numMechs]bool
}

// pack builds a userCreds holding set, copying its bytes into one new
// array.
func (set *credSet) pack() userCreds {
	n := 0
	for i, c := range set.cred {
		if set.has[i] {
			n += len(c.Salt) + len(c.StoredKey) + len(c.ServerKey)
		}
	}
	u := userCreds{keys: make([]byte, 0, n)}
	for i, c := range set.cred {
		if !set.has[i] {
			continue
		}
		u.keys = append(append(append(u.keys, c.Salt...), c.StoredKey...), c.ServerKey...)
		u.slots[i] = credSlot{iterations: c.Iterations, salt: length32(c.Salt), storedKey: length32(c.StoredKey), serverKey: length32(c.ServerKey), set: true}
	}
	return u
}

// length32 is len(b), which no credential's source lets exceed 4 GiB (a
// Kafka request, a record, a file line).
func length32(b []byte) uint32 {
	if uint64(len(b)) > math.MaxUint32 {
		panic("credstore: credential field of 4 GiB or more")
	}
	return uint32(len(b))
}

// packMap packs creds, ignoring mechanisms the store does not hold; ok is
// false when none is left.
func packMap(creds map[sasl.Mechanism]sasl.Credential) (u userCreds, ok bool) {
	var set credSet
	for i := range numMechs {
		set.cred[i], set.has[i] = creds[slotMech(i)]
		ok = ok || set.has[i]
	}
	if !ok {
		return userCreds{}, false
	}
	return set.pack(), true
}

// cred returns slot i's credential, its byte slices sharing u's array and
// capped at their length (an append by the caller copies). Callers must
// not modify them.
func (u *userCreds) cred(i int) (sasl.Credential, bool) {
	s := u.slots[i]
	if !s.set {
		return sasl.Credential{}, false
	}
	off := 0
	for j := range i {
		if p := u.slots[j]; p.set {
			off += int(p.salt) + int(p.storedKey) + int(p.serverKey)
		}
	}
	field := func(n uint32) []byte {
		if n == 0 {
			return nil
		}
		b := u.keys[off : off+int(n) : off+int(n)]
		off += int(n)
		return b
	}
	c := sasl.Credential{Iterations: s.iterations}
	c.Salt = field(s.salt)
	c.StoredKey = field(s.storedKey)
	c.ServerKey = field(s.serverKey)
	return c, true
}

// unpack returns u's credentials by slot, sharing u's array.
func (u *userCreds) unpack() credSet {
	var set credSet
	for i := range numMechs {
		set.cred[i], set.has[i] = u.cred(i)
	}
	return set
}

// copyMap returns u's credentials by mechanism, their bytes copied into
// one new array, so that nothing the caller does to them reaches u.
func (u *userCreds) copyMap() map[sasl.Mechanism]sasl.Credential {
	c := userCreds{keys: bytes.Clone(u.keys), slots: u.slots}
	out := make(map[sasl.Mechanism]sasl.Credential, numMechs)
	for i := range numMechs {
		if cred, ok := c.cred(i); ok {
			out[slotMech(i)] = cred
		}
	}
	return out
}

// NewSnapshot returns an empty snapshot to fill with Put before publishing.
func NewSnapshot() *Snapshot { return &Snapshot{} }

// Put adds a credential (its bytes copied), replacing the user's for m;
// only for snapshots not yet published to a Store. A mechanism other than
// sasl.Mechanisms() is ignored.
func (s *Snapshot) Put(m sasl.Mechanism, user string, c sasl.Credential) {
	slot, ok := mechSlot(m)
	if !ok {
		return
	}
	i := shardOf(user)
	if s.shards[i] == nil {
		s.shards[i] = map[string]userCreds{}
	}
	u := s.shards[i][user]
	set := u.unpack()
	set.cred[slot], set.has[slot] = c, true
	s.shards[i][user] = set.pack()
}

// putAll sets user's credentials to creds, as with does, in a snapshot
// not yet published: one array for all of them rather than one per Put.
func (s *Snapshot) putAll(user string, creds map[sasl.Mechanism]sasl.Credential) {
	u, ok := packMap(creds)
	if !ok {
		return
	}
	i := shardOf(user)
	if s.shards[i] == nil {
		s.shards[i] = map[string]userCreds{}
	}
	s.shards[i][user] = u
}

// Users counts distinct user names.
func (s *Snapshot) Users() int {
	n := 0
	for _, shard := range s.shards {
		n += len(shard)
	}
	return n
}

// Has reports whether user has any credential here.
func (s *Snapshot) Has(user string) bool {
	_, ok := s.shards[shardOf(user)][user]
	return ok
}

// Get returns a copy of user's credentials by mechanism (nil if none),
// sharing no memory with the snapshot.
func (s *Snapshot) Get(user string) map[sasl.Mechanism]sasl.Credential {
	u, ok := s.shards[shardOf(user)][user]
	if !ok {
		return nil
	}
	return u.copyMap()
}

// lookup returns user's credential for m, sharing the snapshot's memory:
// the caller must not modify it.
func (s *Snapshot) lookup(m sasl.Mechanism, user string) (sasl.Credential, bool) {
	slot, ok := mechSlot(m)
	if !ok {
		return sasl.Credential{}, false
	}
	u, ok := s.shards[shardOf(user)][user]
	if !ok {
		return sasl.Credential{}, false
	}
	return u.cred(slot)
}

// Clone copies the snapshot for copy-on-write updates. The copy shares
// the users' key material, which neither side ever modifies (Put and
// Delete build new arrays).
func (s *Snapshot) Clone() *Snapshot {
	c := NewSnapshot()
	for i, shard := range s.shards {
		if len(shard) > 0 {
			c.shards[i] = maps.Clone(shard)
		}
	}
	return c
}

// Delete removes one (mechanism, user); only before publishing.
func (s *Snapshot) Delete(m sasl.Mechanism, user string) {
	slot, ok := mechSlot(m)
	if !ok {
		return
	}
	i := shardOf(user)
	u, ok := s.shards[i][user]
	if !ok || !u.slots[slot].set {
		return
	}
	set := u.unpack()
	set.has[slot] = false
	if set.has == ([numMechs]bool{}) {
		delete(s.shards[i], user)
		return
	}
	s.shards[i][user] = set.pack()
}

// with returns a snapshot in which user has exactly creds (none: absent),
// sharing every shard but user's with s. s is not modified.
func (s *Snapshot) with(user string, creds map[sasl.Mechanism]sasl.Credential) *Snapshot {
	next := *s
	i := shardOf(user)
	shard := maps.Clone(s.shards[i]) // userCreds are never modified once published
	if u, ok := packMap(creds); ok {
		if shard == nil {
			shard = map[string]userCreds{}
		}
		shard[user] = u
	} else {
		delete(shard, user)
	}
	next.shards[i] = shard
	return &next
}

// each calls f for every credential, sharing the snapshot's memory (f
// must not modify it).
func (s *Snapshot) each(f func(string, sasl.Mechanism, sasl.Credential)) {
	for _, shard := range s.shards {
		for user, u := range shard {
			for i := range numMechs {
				if c, ok := u.cred(i); ok {
					f(user, slotMech(i), c)
				}
			}
		}
	}
}

// eachUser calls f with every user name.
func (s *Snapshot) eachUser(f func(string)) {
	for _, shard := range s.shards {
		for user := range shard {
			f(user)
		}
	}
}

// Source names a layer of the Store, in lookup priority order.
type Source int

// The layers, highest priority first: operator-managed files win over users
// written through the Kafka admin API.
const (
	SourceFile Source = iota
	SourceSecretsDir
	SourceAPI
	numSources
)

func (s Source) String() string {
	return [...]string{"credentials.file", "credentials.secrets_dir", "admin API"}[s]
}

// Store serves lookups from one immutable snapshot per source. It is safe
// for concurrent use; Replace publishes a source's new snapshot atomically.
type Store struct {
	layers [numSources]atomic.Pointer[Snapshot]
	// shapes is the challenge shapes of the users as lookups see them,
	// per mechanism, ranked from counts on every publish (under mu, so
	// that two publishes cannot store their populations out of order).
	shapes atomic.Pointer[map[sasl.Mechanism][]sasl.ShapeCount]
	mu     sync.Mutex
	counts map[sasl.Mechanism]map[sasl.Shape]int // under mu
}

// NewStore returns a store whose file layer is snap (nil: empty).
func NewStore(snap *Snapshot) *Store {
	s := &Store{}
	for i := range s.layers {
		s.layers[i].Store(NewSnapshot())
	}
	if snap != nil {
		s.layers[SourceFile].Store(snap)
	}
	s.recount()
	return s
}

// Replace publishes snap as the file layer.
func (s *Store) Replace(snap *Snapshot) { s.ReplaceSource(SourceFile, snap) }

// ReplaceSource publishes snap for one source; lookups already under way
// finish on the old one. snap must not be modified afterwards. The
// population of challenge shapes is recounted (O(users)).
func (s *Store) ReplaceSource(src Source, snap *Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.layers[src].Store(snap)
	s.recount()
}

// ReplaceUser publishes src's snapshot with user's credentials replaced by
// creds (none: user removed from src), in O(users/snapshotShards) plus the
// user's change to the shape counts: what a store that changes one user at
// a time needs.
func (s *Store) ReplaceUser(src Source, user string, creds map[sasl.Mechanism]sasl.Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.ownerCreds(user)
	s.layers[src].Store(s.layers[src].Load().with(user, creds))
	after := s.ownerCreds(user)
	for i := range numMechs {
		if c, ok := before.cred(i); ok {
			sasl.CountShape(s.counts[slotMech(i)], c, -1)
		}
	}
	for i := range numMechs {
		c, ok := after.cred(i)
		if !ok {
			continue
		}
		m := slotMech(i)
		if s.counts[m] == nil {
			s.counts[m] = map[sasl.Shape]int{}
		}
		sasl.CountShape(s.counts[m], c, 1)
	}
	s.publishShapes()
}

// recount counts the shapes of every credential a lookup can return (each
// user's owning layer only) and publishes them. Called under mu.
func (s *Store) recount() {
	var snaps [numSources]*Snapshot
	for i := range s.layers {
		snaps[i] = s.layers[i].Load()
	}
	s.counts = map[sasl.Mechanism]map[sasl.Shape]int{}
	for _, m := range sasl.Mechanisms() {
		s.counts[m] = map[sasl.Shape]int{}
	}
	for i, snap := range snaps {
		snap.each(func(u string, m sasl.Mechanism, c sasl.Credential) {
			for j := range i {
				if snaps[j].Has(u) {
					return // a layer above owns u
				}
			}
			if s.counts[m] == nil {
				s.counts[m] = map[sasl.Shape]int{}
			}
			sasl.CountShape(s.counts[m], c, 1)
		})
	}
	s.publishShapes()
}

// publishShapes ranks the counts into the population PhantomShapes serves.
// Called under mu.
func (s *Store) publishShapes() {
	out := map[sasl.Mechanism][]sasl.ShapeCount{}
	for _, m := range sasl.Mechanisms() {
		out[m] = sasl.RankShapes(s.counts[m])
	}
	s.shapes.Store(&out)
}

// PhantomShapes implements sasl.ShapeSource: the challenge shapes of the
// credentials logins can use (each user's owning layer only), so that an
// unknown user's phantom challenge is drawn from the same mix.
func (s *Store) PhantomShapes(m sasl.Mechanism) []sasl.ShapeCount { return (*s.shapes.Load())[m] }

// Snapshot returns a source's current snapshot (read-only).
func (s *Store) Snapshot(src Source) *Snapshot { return s.layers[src].Load() }

// LookupUser implements sasl.UserLookup with the store's one ownership
// rule: the highest-priority source that defines user at all owns every
// mechanism of that user, so a credential a lower source still holds for
// another mechanism (written through the admin API before the user moved
// into credentials.file, say) never logs in. Lookups, Credentials (describe)
// and Owner (the admin API's read-only rule) all follow it. O(1) per layer.
func (s *Store) LookupUser(_ context.Context, m sasl.Mechanism, user string) (sasl.Credential, error) {
	snap, ok := s.owner(user)
	if !ok {
		return sasl.Credential{}, sasl.ErrUnknownCredential
	}
	if c, ok := snap.lookup(m, user); ok {
		return c, nil
	}
	return sasl.Credential{}, sasl.ErrUnknownCredential
}

// owner returns the snapshot of the highest-priority source that defines
// user, loaded once so one lookup sees one consistent layer.
func (s *Store) owner(user string) (*Snapshot, bool) {
	for i := range s.layers {
		if snap := s.layers[i].Load(); snap.Has(user) {
			return snap, true
		}
	}
	return nil, false
}

// ownerCreds is user's entry in its owning layer (zero: no user), sharing
// the layer's memory.
func (s *Store) ownerCreds(user string) userCreds {
	snap, ok := s.owner(user)
	if !ok {
		return userCreds{}
	}
	return snap.shards[shardOf(user)][user]
}

// Owner returns the highest-priority source that defines user at all: the
// source that owns all of the user's mechanisms.
func (s *Store) Owner(user string) (Source, bool) {
	for i := range s.layers {
		if s.layers[i].Load().Has(user) {
			return Source(i), true
		}
	}
	return 0, false
}

// Users counts distinct users across every source.
func (s *Store) Users() int {
	seen := map[string]bool{}
	for i := range s.layers {
		s.layers[i].Load().eachUser(func(u string) { seen[u] = true })
	}
	return len(seen)
}

// Credentials returns the mechanisms and credentials that apply to user:
// the highest-priority source defining the user supplies all of them.
func (s *Store) Credentials(user string) map[sasl.Mechanism]sasl.Credential {
	snap, ok := s.owner(user)
	if !ok {
		return nil
	}
	return snap.Get(user)
}

// AllUsers lists every user with at least one credential, sorted.
func (s *Store) AllUsers() []string {
	seen := map[string]bool{}
	for i := range s.layers {
		s.layers[i].Load().eachUser(func(u string) { seen[u] = true })
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
