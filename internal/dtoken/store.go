package dtoken

import "sync"

// TokenStore persists token metadata. Implementations must be safe for
// concurrent use, and durable when they return (the bbolt store fsyncs).
// A fleet-shared backend (a compacted Kafka topic) can implement it later.
type TokenStore interface {
	LoadTokens() ([]Info, error)
	PutToken(Info) error
	DeleteToken(id string) error
}

// MemStore is an in-memory TokenStore for tests and stateless runs.
type MemStore struct {
	mu sync.Mutex
	m  map[string]Info
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string]Info{}} }

// LoadTokens returns every stored token.
func (s *MemStore) LoadTokens() ([]Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.m))
	for _, i := range s.m {
		out = append(out, i)
	}
	return out, nil
}

// PutToken stores or replaces a token.
func (s *MemStore) PutToken(i Info) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[i.ID] = i
	return nil
}

// DeleteToken removes a token; a missing one is not an error.
func (s *MemStore) DeleteToken(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// SelfApplying is implemented by a TokenStore that feeds every write it
// accepts back into the Manager (ApplyToken, ForgetToken) before PutToken
// or DeleteToken returns, as a store shared through a log does when it
// reads its own record back. The Manager asks AppliesWrites before each
// write (a log applies only once it tails into the Manager); when it
// reports true the Manager does not apply the write itself: applying it
// again after the store returned could put an older record back over a
// newer one the store had applied from another proxy in between.
type SelfApplying interface {
	AppliesWrites() bool
}
