package credstore

import (
	"context"
	"sync/atomic"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Snapshot is an immutable set of credentials, one per (mechanism, user).
type Snapshot struct {
	byMech map[sasl.Mechanism]map[string]sasl.Credential
	users  int
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
	for _, users := range s.byMech {
		for u := range users {
			seen[u] = true
		}
	}
	return len(seen)
}

// Store serves lookups from the current snapshot. It is safe for concurrent
// use; Replace publishes a new snapshot atomically.
type Store struct {
	cur atomic.Pointer[Snapshot]
}

// NewStore returns a store serving snap (nil: no users).
func NewStore(snap *Snapshot) *Store {
	s := &Store{}
	if snap == nil {
		snap = NewSnapshot()
	}
	s.cur.Store(snap)
	return s
}

// Replace publishes snap; lookups already under way finish on the old one.
// snap must not be modified afterwards.
func (s *Store) Replace(snap *Snapshot) { s.cur.Store(snap) }

// LookupUser implements sasl.UserLookup in O(1).
func (s *Store) LookupUser(_ context.Context, m sasl.Mechanism, user string) (sasl.Credential, error) {
	c, ok := s.cur.Load().byMech[m][user]
	if !ok {
		return sasl.Credential{}, sasl.ErrUnknownCredential
	}
	return c, nil
}

// Users counts the users of the current snapshot.
func (s *Store) Users() int { return s.cur.Load().Users() }
