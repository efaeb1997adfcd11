package statelog

// The persistence interfaces the caches use: dtoken.TokenStore,
// credstore.UserStore, and the named secrets.

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// AppliesWrites reports whether a write returns only after the Log has fed
// it to its sinks (dtoken.SelfApplying, credstore.SelfApplying): true once
// Start has begun the tail. Then the caches must not apply it again, or an
// older record could overwrite a newer one from another proxy; before,
// nothing feeds them and they apply their own writes.
func (l *Log) AppliesWrites() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tailing
}

// errHandedOver is a Load after Start: from then on the sinks hold the
// users and tokens, not the log.
var errHandedOver = errors.New("statelog: users and tokens are held by the caches once Start has run")

// LoadTokens implements dtoken.TokenStore: the tokens restored (the
// topic's up to its end offset at start). Only before Start.
func (l *Log) LoadTokens() ([]dtoken.Info, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tailing {
		return nil, errHandedOver
	}
	out := make([]dtoken.Info, 0, len(l.tokens))
	for _, i := range l.tokens {
		out = append(out, i)
	}
	return out, nil
}

// PutToken implements dtoken.TokenStore: it returns once the token is in
// the topic and this proxy's TokenSink has applied it. The record holds
// dtoken.Info (stored SCRAM credentials, never the HMAC), sealed.
func (l *Log) PutToken(i dtoken.Info) error {
	v, err := json.Marshal(i)
	if err != nil {
		return err
	}
	return l.write(KindToken, i.ID, v)
}

// DeleteToken implements dtoken.TokenStore with a tombstone; deleting a
// token that is not held is not an error.
func (l *Log) DeleteToken(id string) error { return l.write(KindToken, id, nil) }

// LoadUsers implements credstore.UserStore: the users restored. Only
// before Start. The outer map is a copy; each user's credential map is the
// log's own, shared rather than copied (100,000 maps at a large restore):
// the log never modifies one once decoded (a later record replaces it).
func (l *Log) LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tailing {
		return nil, errHandedOver
	}
	return maps.Clone(l.users), nil
}

// PutUser implements credstore.UserStore: every credential of user,
// sealed in Kafka's stored form (never a password); no credentials is a
// tombstone. It returns once this proxy's UserSink has applied it.
func (l *Log) PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error {
	if len(creds) == 0 {
		return l.write(KindUser, user, nil)
	}
	v, err := encodeUser(user, creds)
	if err != nil {
		return err
	}
	return l.write(KindUser, user, v)
}

// Secret returns the 32-byte secret called name that the fleet shares
// (the phantom-login key), creating it in the topic if no proxy has. Two
// proxies that create it at the same moment each get their own here; the
// topic keeps the later, which every proxy holds once it has read it
// (HeldSecret), and which a restart restores.
func (l *Log) Secret(name string) ([]byte, error) {
	if s, ok := l.secret(name); ok {
		return s, nil
	}
	s := make([]byte, secretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	if err := l.write(KindSecret, name, s); err != nil {
		return nil, err
	}
	if held, ok := l.secret(name); ok {
		return held, nil
	}
	return s, nil
}

// HeldSecret returns the secret called name as held now, the topic's
// latest record of it (which all proxies reach), or def if none is held
// (deleted by hand). It does not copy: callers must not modify it.
func (l *Log) HeldSecret(name string, def []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.secrets[name]; ok {
		return s
	}
	return def
}

func (l *Log) secret(name string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.secrets[name]
	return append([]byte(nil), s...), ok
}

// StoredSecrets returns every named secret held (for state copy).
func (l *Log) StoredSecrets() (map[string][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]byte, len(l.secrets))
	for n, v := range l.secrets {
		out[n] = append([]byte(nil), v...)
	}
	return out, nil
}

// PutSecret writes the secret called name (for state copy); it must be 32
// bytes, as Secret creates them.
func (l *Log) PutSecret(name string, value []byte) error {
	if len(value) != secretSize {
		return fmt.Errorf("statelog: secret %q is %d bytes, want %d", name, len(value), secretSize)
	}
	return l.write(KindSecret, name, value)
}
