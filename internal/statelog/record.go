package statelog

// The record model of the state topic. A record's key is "<kind>/<id>" in
// the clear; its value is sealed:
//
//	byte 0       format version (1)
//	byte 1       n, the length of the key id (1..64)
//	bytes 2..2+n the key id (Keyring) that sealed the value
//	12 bytes     the AES-GCM nonce, random per record
//	the rest     AES-256-GCM ciphertext and 16-byte tag of the plaintext
//
// The additional data authenticated with the ciphertext is the header
// (version, length, key id) followed by the record key, so a value cannot be
// moved to another kind or id, nor relabelled with another key id. A null
// value (a tombstone) deletes the key; compaction removes it later.
//
// The plaintexts are the JSON the embedded store (internal/state) writes:
// a token is dtoken.Info (stored SCRAM credentials, never the HMAC); a user
// is {"<mechanism>": "<Kafka stored form>"} (salt, StoredKey, ServerKey,
// iterations; never a password); a secret is its 32 raw bytes.

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// The kinds of record, the part of a record key before the first '/'.
const (
	KindUser   = "user"
	KindToken  = "token"
	KindSecret = "secret"
)

const (
	formatV1  = 1
	nonceSize = 12
	// secretSize is the length of a named secret (Secret).
	secretSize = 32
)

// Why a record was ignored: the reason label of the ignored-records
// metric. A bounded set.
const (
	ReasonKey        = "bad_key"        // the record key is not "<kind>/<id>" with a known kind
	ReasonFormat     = "bad_format"     // the value's header is malformed or of an unknown version
	ReasonUnknownKey = "unknown_key_id" // sealed under a key id the key file does not list
	ReasonOpen       = "open_failed"    // the ciphertext does not authenticate (tampered, moved, wrong key)
	ReasonValue      = "bad_value"      // it opens but the plaintext is not a valid record of its kind
)

// RecordError says why a record was ignored. It never quotes the record.
type RecordError struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *RecordError) Error() string {
	return "state record ignored (" + e.Reason + "): " + e.Err.Error()
}
func (e *RecordError) Unwrap() error { return e.Err }

func recordErr(reason, format string, args ...any) error {
	return &RecordError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Entry is one decoded record: a kind and id and, unless Delete, the value
// of that kind.
type Entry struct {
	Kind, ID string
	Delete   bool // a tombstone
	Token    dtoken.Info
	User     map[sasl.Mechanism]sasl.Credential
	Secret   []byte

	_ struct{}
}

// recordKey is the clear-text key of kind/id.
func recordKey(kind, id string) []byte { return []byte(kind + "/" + id) }

// recordName is a record key as the log indexes the records it holds:
// kind and id apart, so that the index holds no string of its own but
// the id that the user or token it names holds too.
type recordName struct{ kind, id string }

// splitKey parses a record key. kind is one of the Kind constants.
func splitKey(key []byte) (kind, id string, err error) {
	kind, id, ok := strings.Cut(string(key), "/")
	if !ok || id == "" {
		return "", "", recordErr(ReasonKey, "the key is not <kind>/<id>")
	}
	for _, k := range [...]string{KindUser, KindToken, KindSecret} {
		if kind == k {
			return k, id, nil
		}
	}
	return "", "", recordErr(ReasonKey, "unknown kind")
}

// seal encrypts plaintext for key under the sealing (first) key.
func (k *Keyring) seal(key, plaintext []byte) ([]byte, error) {
	id := k.ids[0]
	aead := k.aeads[id]
	out := make([]byte, 0, 2+len(id)+nonceSize+len(plaintext)+aead.Overhead())
	out = append(out, formatV1, byte(len(id)))
	out = append(out, id...)
	header := len(out)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	ad := append(append([]byte(nil), out[:header]...), key...)
	return aead.Seal(out, nonce, plaintext, ad), nil
}

// open authenticates and decrypts a sealed value of key.
func (k *Keyring) open(key, value []byte) ([]byte, error) {
	if len(value) < 2 || value[0] != formatV1 {
		return nil, recordErr(ReasonFormat, "unknown format")
	}
	n := int(value[1])
	if n == 0 || n > maxKeyID || len(value) < 2+n+nonceSize {
		return nil, recordErr(ReasonFormat, "truncated header")
	}
	header := 2 + n
	id := string(value[2:header])
	aead, ok := k.aeads[id]
	if !ok {
		if !validKeyID(id) {
			return nil, recordErr(ReasonFormat, "malformed key id")
		}
		return nil, recordErr(ReasonUnknownKey, "sealed under key id %q, which state.kafka.key_file does not list", id)
	}
	nonce := value[header : header+nonceSize]
	ad := append(append([]byte(nil), value[:header]...), key...)
	plain, err := aead.Open(nil, nonce, value[header+nonceSize:], ad)
	if err != nil {
		return nil, recordErr(ReasonOpen, "does not authenticate under key id %q", id)
	}
	return plain, nil
}

// decode opens and decodes one record of the topic. A nil or empty value
// is a tombstone.
func (k *Keyring) decode(key, value []byte) (Entry, error) {
	kind, id, err := splitKey(key)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Kind: kind, ID: id}
	if len(value) == 0 {
		e.Delete = true
		return e, nil
	}
	plain, err := k.open(key, value)
	if err != nil {
		return Entry{}, err
	}
	switch kind {
	case KindToken:
		if err := json.Unmarshal(plain, &e.Token); err != nil {
			return Entry{}, recordErr(ReasonValue, "token: not a valid JSON record")
		}
		if e.Token.ID != id {
			return Entry{}, recordErr(ReasonValue, "token: the record key does not match its token id")
		}
	case KindUser:
		if e.User, err = decodeUser(plain); err != nil {
			return Entry{}, err
		}
	case KindSecret:
		if len(plain) != secretSize {
			return Entry{}, recordErr(ReasonValue, "secret: %d bytes, want %d", len(plain), secretSize)
		}
		e.Secret = plain
	}
	return e, nil
}

// decodeUser parses a user's mechanism → stored form map. Every credential
// must pass sasl.ParseStoredForm; a user without one is not a record a
// proxy writes (deletion is a tombstone).
func decodeUser(plain []byte) (map[sasl.Mechanism]sasl.Credential, error) {
	var forms map[string]string
	if err := json.Unmarshal(plain, &forms); err != nil {
		return nil, recordErr(ReasonValue, "user: not a valid JSON record")
	}
	if len(forms) == 0 {
		return nil, recordErr(ReasonValue, "user: no credential")
	}
	creds := make(map[sasl.Mechanism]sasl.Credential, len(forms))
	for name, form := range forms {
		m, ok := sasl.ParseMechanism(name)
		if !ok {
			return nil, recordErr(ReasonValue, "user: unknown mechanism")
		}
		c, err := sasl.ParseStoredForm(m, form)
		if err != nil {
			return nil, recordErr(ReasonValue, "user: %s: %w", m, err)
		}
		creds[m] = c
	}
	return creds, nil
}

// encodeUser is decodeUser's inverse. Every credential must pass Validate,
// so nothing is written that would not be read back.
func encodeUser(user string, creds map[sasl.Mechanism]sasl.Credential) ([]byte, error) {
	forms := make(map[string]string, len(creds))
	for m, c := range creds {
		if err := c.Validate(m); err != nil {
			return nil, fmt.Errorf("user %q, %s: %w", user, m, err)
		}
		forms[string(m)] = c.StoredForm()
	}
	return json.Marshal(forms)
}

// errEmptyID refuses a write with an empty id, which no record key allows.
var errEmptyID = errors.New("statelog: empty id")
