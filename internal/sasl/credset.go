package sasl

import (
	"bytes"
	"math"
)

// CredentialSet holds one principal's credentials, at most one per
// mechanism (a slot each, Mechanism.Index), with the salts and keys of all
// of them back to back in one array of its own. For caches that hold many
// principals: whatever the number of mechanisms, a set is one heap object
// and one pointer for the garbage collector to mark, where a map of
// Credentials is several objects and a pointer per salt and key. The zero
// value is empty. A set is never modified once built (With and Without
// build new ones), so copies of it may be shared freely.
type CredentialSet struct {
	keys  []byte
	slots [NumMechanisms]credentialSlot
}

// credentialSlot is one mechanism's credential within a CredentialSet:
// its iterations and the lengths of its three byte strings in keys.
type credentialSlot struct {
	iterations                 int
	salt, storedKey, serverKey uint32
	set                        bool
}

// unpackedSet is a CredentialSet's credentials by slot, as slices.
type unpackedSet struct {
	cred [NumMechanisms]Credential
	has  [NumMechanisms]bool
}

// NewCredentialSet builds a set holding creds, copying their bytes.
// Mechanisms this package does not implement are left out.
func NewCredentialSet(creds map[Mechanism]Credential) CredentialSet {
	var u unpackedSet
	for m, c := range creds {
		if i, ok := m.Index(); ok {
			u.cred[i], u.has[i] = c, true
		}
	}
	return u.pack()
}

// With returns a set like s with m's credential c (its bytes copied);
// s itself when m is not a mechanism this package implements.
func (s CredentialSet) With(m Mechanism, c Credential) CredentialSet {
	i, ok := m.Index()
	if !ok {
		return s
	}
	u := s.unpack()
	u.cred[i], u.has[i] = c, true
	return u.pack()
}

// Without returns a set like s without m's credential.
func (s CredentialSet) Without(m Mechanism) CredentialSet {
	i, ok := m.Index()
	if !ok || !s.slots[i].set {
		return s
	}
	u := s.unpack()
	u.has[i] = false
	return u.pack()
}

// Empty reports whether s holds no credential.
func (s CredentialSet) Empty() bool {
	for _, sl := range s.slots {
		if sl.set {
			return false
		}
	}
	return true
}

// Get returns m's credential. Its byte slices share s's array, each capped
// at its length (an append by the caller copies); the caller must not
// modify them.
func (s CredentialSet) Get(m Mechanism) (Credential, bool) {
	i, ok := m.Index()
	if !ok || !s.slots[i].set {
		return Credential{}, false
	}
	off := 0
	for _, p := range s.slots[:i] {
		if p.set {
			off += int(p.salt) + int(p.storedKey) + int(p.serverKey)
		}
	}
	field := func(n uint32) []byte {
		if n == 0 {
			return nil
		}
		b := s.keys[off : off+int(n) : off+int(n)]
		off += int(n)
		return b
	}
	sl := s.slots[i]
	c := Credential{Iterations: sl.iterations}
	c.Salt = field(sl.salt)
	c.StoredKey = field(sl.storedKey)
	c.ServerKey = field(sl.serverKey)
	return c, true
}

// Map returns s's credentials by mechanism (nil when s is empty), their
// bytes copied into one new array: nothing the caller does to them
// reaches s.
func (s CredentialSet) Map() map[Mechanism]Credential {
	if s.Empty() {
		return nil
	}
	c := CredentialSet{keys: bytes.Clone(s.keys), slots: s.slots}
	out := make(map[Mechanism]Credential, NumMechanisms)
	for _, m := range Mechanisms() {
		if cred, ok := c.Get(m); ok {
			out[m] = cred
		}
	}
	return out
}

// unpack returns s's credentials by slot, sharing s's array.
func (s CredentialSet) unpack() unpackedSet {
	var u unpackedSet
	for i, m := range Mechanisms() {
		u.cred[i], u.has[i] = s.Get(m)
	}
	return u
}

// pack builds a set holding u, copying its bytes into one new array.
func (u *unpackedSet) pack() CredentialSet {
	n := 0
	for i, c := range u.cred {
		if u.has[i] {
			n += len(c.Salt) + len(c.StoredKey) + len(c.ServerKey)
		}
	}
	s := CredentialSet{keys: make([]byte, 0, n)}
	for i, c := range u.cred {
		if !u.has[i] {
			continue
		}
		s.keys = append(append(append(s.keys, c.Salt...), c.StoredKey...), c.ServerKey...)
		s.slots[i] = credentialSlot{iterations: c.Iterations, salt: length32(c.Salt),
			storedKey: length32(c.StoredKey), serverKey: length32(c.ServerKey), set: true}
	}
	return s
}

// length32 is len(b), which no credential's source lets reach 4 GiB (a
// Kafka request, a record, a file line).
func length32(b []byte) uint32 {
	if uint64(len(b)) > math.MaxUint32 {
		panic("sasl: credential field of 4 GiB or more")
	}
	return uint32(len(b))
}
