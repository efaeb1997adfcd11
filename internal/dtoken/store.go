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
