package credstore

import (
	"sync"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// MemUsers is an in-memory UserStore for tests and stateless runs.
type MemUsers struct {
	mu sync.Mutex
	m  map[string]map[sasl.Mechanism]sasl.Credential
}

// NewMemUsers returns an empty MemUsers.
func NewMemUsers() *MemUsers { return &MemUsers{m: map[string]map[sasl.Mechanism]sasl.Credential{}} }

// LoadUsers returns a copy of every user.
func (s *MemUsers) LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[sasl.Mechanism]sasl.Credential, len(s.m))
	for u, creds := range s.m {
		out[u] = copyCreds(creds)
	}
	return out, nil
}

// PutUser replaces (or, with no credentials, deletes) a user.
func (s *MemUsers) PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(creds) == 0 {
		delete(s.m, user)
	} else {
		s.m[user] = copyCreds(creds)
	}
	return nil
}

func copyCreds(in map[sasl.Mechanism]sasl.Credential) map[sasl.Mechanism]sasl.Credential {
	out := make(map[sasl.Mechanism]sasl.Credential, len(in))
	for m, c := range in {
		out[m] = c
	}
	return out
}
