package credstore

import (
	"context"
	"maps"
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
// A shard maps each name to a sasl.CredentialSet by value: per user the
// garbage collector finds two heap objects (the name and one byte array
// holding all of the user's key material) and two pointers in the shard's
// table, whatever the number of mechanisms. Only sasl.Mechanisms() are
// held; no login could use another.
type Snapshot struct {
	shards [snapshotShards]map[string]sasl.CredentialSet // nil: empty
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

// NewSnapshot returns an empty snapshot to fill with Put before publishing.
func NewSnapshot() *Snapshot { return &Snapshot{} }

// Put adds a credential (its bytes copied), replacing the user's for m;
// only for snapshots not yet published to a Store. A mechanism other than
// sasl.Mechanisms() is ignored.
func (s *Snapshot) Put(m sasl.Mechanism, user string, c sasl.Credential) {
	if _, ok := m.Index(); !ok {
		return
	}
	s.set(user, s.shards[shardOf(user)][user].With(m, c))
}

// putAll sets user's credentials to creds, as with does, in a snapshot
// not yet published: one array for all of them rather than one per Put.
func (s *Snapshot) putAll(user string, creds map[sasl.Mechanism]sasl.Credential) {
	if u := sasl.NewCredentialSet(creds); !u.Empty() {
		s.set(user, u)
	}
}

// set makes u user's credentials in a snapshot not yet published.
func (s *Snapshot) set(user string, u sasl.CredentialSet) {
	i := shardOf(user)
	if s.shards[i] == nil {
		s.shards[i] = map[string]sasl.CredentialSet{}
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
	return s.shards[shardOf(user)][user].Map()
}

// lookup returns user's credential for m, sharing the snapshot's memory:
// the caller must not modify it.
func (s *Snapshot) lookup(m sasl.Mechanism, user string) (sasl.Credential, bool) {
	return s.shards[shardOf(user)][user].Get(m)
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
	i := shardOf(user)
	u, ok := s.shards[i][user]
	if !ok {
		return
	}
	if _, ok := u.Get(m); !ok {
		return
	}
	if u = u.Without(m); u.Empty() {
		delete(s.shards[i], user)
		return
	}
	s.shards[i][user] = u
}

// with returns a snapshot in which user has exactly creds (none: absent),
// sharing every shard but user's with s. s is not modified.
func (s *Snapshot) with(user string, creds map[sasl.Mechanism]sasl.Credential) *Snapshot {
	next := *s
	i := shardOf(user)
	shard := maps.Clone(s.shards[i]) // credential sets are never modified
	if u := sasl.NewCredentialSet(creds); !u.Empty() {
		if shard == nil {
			shard = map[string]sasl.CredentialSet{}
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
			for _, m := range sasl.Mechanisms() {
				if c, ok := u.Get(m); ok {
					f(user, m, c)
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
	for _, m := range sasl.Mechanisms() {
		if c, ok := before.Get(m); ok {
			sasl.CountShape(s.counts[m], c, -1)
		}
	}
	for _, m := range sasl.Mechanisms() {
		c, ok := after.Get(m)
		if !ok {
			continue
		}
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
func (s *Store) ownerCreds(user string) sasl.CredentialSet {
	snap, ok := s.owner(user)
	if !ok {
		return sasl.CredentialSet{}
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
