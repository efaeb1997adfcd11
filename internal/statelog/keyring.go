package statelog

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of a state key: AES-256.
const KeySize = 32

// maxKeyID bounds a key id, which every sealed value carries in the clear.
const maxKeyID = 64

// Keyring holds the keys that seal and open state records. The first key
// seals every new record; every key opens the records sealed under it, so
// the sealing key can be rotated by listing a new key first and dropping
// the old one once no record needs it. Immutable; safe for concurrent use.
// Its String and GoString show only the key ids.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// ParseKeyring reads a key file: one key per line, "<id> <key>", the key
// 32 bytes in standard base64 (`head -c 32 /dev/urandom | base64`). Blank
// lines and lines starting with # are skipped. An id is 1 to 64 letters,
// digits, '.', '_' or '-', listed once. At least one key is required. Errors
// name the line, never a key.
func ParseKeyring(data []byte) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<id> <base64 key>\"", n)
		}
		id := fields[0]
		if !validKeyID(id) {
			return nil, fmt.Errorf("line %d: key id must be 1 to %d letters, digits, '.', '_' or '-'", n, maxKeyID)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("line %d: key id %q is listed twice", n, id)
		}
		key, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("line %d: key %q is not %d bytes in base64", n, id, KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		k.ids = append(k.ids, id)
		k.aeads[id] = aead
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(k.ids) == 0 {
		return nil, errors.New("no key: want one \"<id> <base64 key>\" line or more")
	}
	return k, nil
}

// LoadKeyring reads and parses a key file (ParseKeyring).
func LoadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// validKeyID accepts 1 to maxKeyID bytes of [A-Za-z0-9._-].
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// IDs lists the key ids, the sealing key first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// String shows the key ids only.
func (k *Keyring) String() string { return "statelog.Keyring" + fmt.Sprint(k.ids) }

// GoString shows the key ids only.
func (k *Keyring) GoString() string { return k.String() }
