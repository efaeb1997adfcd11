package credstore

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Snapshot is an immutable set of credentials, one per (mechanism, user),
// once published to a Store.
type Snapshot struct {
	byMech map[sasl.Mechanism]map[string]sasl.Credential
}

// NewSnapshot returns an empty snapshot to fill with Put before publishing.
func NewSnapshot() *Snapshot {
	return &Snapshot{byMech: map[sasl.Mechanism]map[string]sasl.Credential{}}
}

// Put adds a credential; only for snapshots not yet published to a Store.
func (s *Snapshot) Put(m sasl.Mechanism, user string, c sasl.Credential) {
	users := s.byMech[m]
	if users == nil {
		users = map[string]sasl.Credential{}
		s.byMech[m] = users
	}
	users[user] = c
}

// Users counts distinct user names.
func (s *Snapshot) Users() int {
	seen := map[string]bool{}
	s.each(func(u string, _ sasl.Mechanism, _ sasl.Credential) { seen[u] = true })
	return len(seen)
}

// Has reports whether user has any credential here.
func (s *Snapshot) Has(user string) bool {
	for _, users := range s.byMech {
		if _, ok := users[user]; ok {
			return true
		}
	}
	return false
}

// Get returns user's credentials by mechanism (nil if none).
func (s *Snapshot) Get(user string) map[sasl.Mechanism]sasl.Credential {
	var out map[sasl.Mechanism]sasl.Credential
	for m, users := range s.byMech {
		if c, ok := users[user]; ok {
			if out == nil {
				out = map[sasl.Mechanism]sasl.Credential{}
			}
			out[m] = c
		}
	}
	return out
}

// Clone copies the snapshot for copy-on-write updates.
func (s *Snapshot) Clone() *Snapshot {
	c := NewSnapshot()
	s.each(func(u string, m sasl.Mechanism, cred sasl.Credential) { c.Put(m, u, cred) })
	return c
}

// Delete removes one (mechanism, user); only before publishing.
func (s *Snapshot) Delete(m sasl.Mechanism, user string) { delete(s.byMech[m], user) }

func (s *Snapshot) each(f func(string, sasl.Mechanism, sasl.Credential)) {
	for m, users := range s.byMech {
		for u, c := range users {
			f(u, m, c)
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
	// per mechanism, recomputed on every publish (under mu, so that two
	// publishes cannot store their populations out of order).
	shapes atomic.Pointer[map[sasl.Mechanism][]sasl.ShapeCount]
	mu     sync.Mutex
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
	s.shapes.Store(s.population())
	return s
}

// Replace publishes snap as the file layer.
func (s *Store) Replace(snap *Snapshot) { s.ReplaceSource(SourceFile, snap) }

// ReplaceSource publishes snap for one source; lookups already under way
// finish on the old one. snap must not be modified afterwards. The
// population of challenge shapes is recomputed (O(users)).
func (s *Store) ReplaceSource(src Source, snap *Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.layers[src].Store(snap)
	s.shapes.Store(s.population())
}

// PhantomShapes implements sasl.ShapeSource: the challenge shapes of the
// credentials logins can use (each user's owning layer only), so that an
// unknown user's phantom challenge is drawn from the same mix.
func (s *Store) PhantomShapes(m sasl.Mechanism) []sasl.ShapeCount { return (*s.shapes.Load())[m] }

// population counts the shapes of every credential a lookup can return.
func (s *Store) population() *map[sasl.Mechanism][]sasl.ShapeCount {
	var snaps [numSources]*Snapshot
	for i := range s.layers {
		snaps[i] = s.layers[i].Load()
	}
	// owned reports whether a layer above i defines u.
	owned := func(i int, u string) bool {
		for j := range i {
			if snaps[j].Has(u) {
				return true
			}
		}
		return false
	}
	out := map[sasl.Mechanism][]sasl.ShapeCount{}
	for _, m := range sasl.Mechanisms() {
		out[m] = sasl.Population(func(yield func(sasl.Credential) bool) {
			for i, snap := range snaps {
				for u, c := range snap.byMech[m] {
					if !owned(i, u) && !yield(c) {
						return
					}
				}
			}
		})
	}
	return &out
}

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
	if c, ok := snap.byMech[m][user]; ok {
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
		s.layers[i].Load().each(func(u string, _ sasl.Mechanism, _ sasl.Credential) { seen[u] = true })
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
		s.layers[i].Load().each(func(u string, _ sasl.Mechanism, _ sasl.Credential) { seen[u] = true })
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
