package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// Credential is what Kafka stores for one (user, mechanism): never the
// password, never the salted password (ScramCredential.java).
//
// A Credential is immutable once built and safe to share between goroutines.
// Its String and Format methods redact the keys.
type Credential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int

	_ struct{} // force named fields
}

// String redacts the key material so a Credential can never leak into a log.
func (c Credential) String() string {
	return fmt.Sprintf("Credential{iterations=%d, salt_len=%d, keys=REDACTED}", c.Iterations, len(c.Salt))
}

// GoString redacts like String, so %#v does not leak either.
func (c Credential) GoString() string { return c.String() }

// StoredForm renders Kafka's ZooKeeper/CLI text form:
// salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>.
// The result is secret-equivalent for offline guessing; do not log it.
func (c Credential) StoredForm() string {
	enc := base64.StdEncoding
	return "salt=" + enc.EncodeToString(c.Salt) +
		",stored_key=" + enc.EncodeToString(c.StoredKey) +
		",server_key=" + enc.EncodeToString(c.ServerKey) +
		",iterations=" + strconv.Itoa(c.Iterations)
}

// ErrBadStoredForm reports a credential string that is not Kafka's stored form.
var ErrBadStoredForm = errors.New("invalid SCRAM credential")

// ParseStoredForm parses Kafka's stored form as ScramCredentialUtils does:
// split on ",", then on the first "="; exactly the four keys salt,
// stored_key, server_key and iterations, in any order, each once. Base64 is
// standard with padding. When m is non-empty the key lengths are checked
// against its hash size. Errors never echo the input (it is secret-equivalent).
//
// The salt and keys are decoded into one array, each slice capped at its
// own length: a parse allocates once, for restores that parse many (the
// token records, the users).
func ParseStoredForm(m Mechanism, s string) (Credential, error) {
	const (
		salt = iota
		storedKey
		serverKey
		iterations
	)
	names := [...]string{salt: "salt", storedKey: "stored_key", serverKey: "server_key", iterations: "iterations"}
	enc := base64.StdEncoding.Strict()
	keys := make([]byte, 0, storedFormSize(s))
	var c Credential
	var seen [len(names)]bool
	i := 0
	for part := range strings.SplitSeq(s, ",") {
		i++
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Credential{}, fmt.Errorf("%w: field %d without '='", ErrBadStoredForm, i)
		}
		f := slices.Index(names[:], k)
		if f < 0 { // not echoed: a mangled entry may hold secret material here
			return Credential{}, fmt.Errorf("%w: field %d has an unknown key (want salt, stored_key, server_key, iterations)", ErrBadStoredForm, i)
		}
		if seen[f] {
			return Credential{}, fmt.Errorf("%w: duplicate key %q", ErrBadStoredForm, k)
		}
		seen[f] = true
		var err error
		if f == iterations {
			c.Iterations, err = strconv.Atoi(v)
			if err == nil && c.Iterations <= 0 {
				err = errors.New("not positive")
			}
		} else {
			start := len(keys)
			if keys, err = enc.AppendDecode(keys, []byte(v)); err == nil {
				b := keys[start:len(keys):len(keys)]
				switch f {
				case salt:
					c.Salt = b
				case storedKey:
					c.StoredKey = b
				case serverKey:
					c.ServerKey = b
				}
			}
		}
		if err != nil {
			return Credential{}, fmt.Errorf("%w: bad value for %s", ErrBadStoredForm, k)
		}
	}
	for f, k := range names {
		if !seen[f] {
			return Credential{}, fmt.Errorf("%w: missing key %q", ErrBadStoredForm, k)
		}
	}
	if err := c.Validate(m); err != nil {
		return Credential{}, err
	}
	return c, nil
}

// storedFormSize is the decoded size of the salt, stored_key and
// server_key values in s when they are valid base64 (less when not, which
// the parse then refuses): the array ParseStoredForm decodes them into.
func storedFormSize(s string) int {
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		switch k, v, _ := strings.Cut(part, "="); k {
		case "salt", "stored_key", "server_key":
			pad := len(v) - len(strings.TrimSuffix(strings.TrimSuffix(v, "="), "="))
			n += max(0, len(v)/4*3-pad)
		}
	}
	return n
}

// Validate is the one check every stored credential passes, whichever way it
// arrives: parsed from a file or the state store, or written through the
// admin API. What is accepted on write therefore always loads again. It
// requires a non-empty salt, positive iterations and, when m is non-empty,
// keys of m's hash size. Kafka's extra bounds on written iterations
// (MinIterations..MaxIterations) are the writer's to apply: a stored
// credential below them loads and then fails at login, as in Kafka.
// Errors wrap ErrBadStoredForm and never quote key material.
func (c Credential) Validate(m Mechanism) error {
	if len(c.Salt) == 0 {
		return fmt.Errorf("%w: empty salt", ErrBadStoredForm)
	}
	if c.Iterations <= 0 {
		return fmt.Errorf("%w: iterations not positive", ErrBadStoredForm)
	}
	if n := m.HashSize(); n != 0 && (len(c.StoredKey) != n || len(c.ServerKey) != n) {
		return fmt.Errorf("%w: key length does not match %s", ErrBadStoredForm, m)
	}
	return nil
}

// DeriveCredential computes the stored credential for a password the way
// Kafka does: PBKDF2 over the UTF-8 password with no SASLprep (xdg-go's
// "Unprepped" client, which is why it is used here rather than NewClient).
func DeriveCredential(m Mechanism, password string, salt []byte, iterations int) (Credential, error) {
	var gen scram.HashGeneratorFcn
	switch m {
	case ScramSHA256:
		gen = scram.SHA256
	case ScramSHA512:
		gen = scram.SHA512
	default:
		return Credential{}, fmt.Errorf("derive credential: unsupported mechanism %q", m)
	}
	if iterations <= 0 || len(salt) == 0 {
		return Credential{}, errors.New("derive credential: salt and positive iterations are required")
	}
	client, err := gen.NewClientUnprepped("", password, "")
	if err != nil {
		return Credential{}, fmt.Errorf("derive credential: %w", err)
	}
	sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return Credential{}, fmt.Errorf("derive credential: %w", err)
	}
	return Credential{
		Salt:       append([]byte(nil), salt...),
		StoredKey:  sc.StoredKey,
		ServerKey:  sc.ServerKey,
		Iterations: iterations,
	}, nil
}

// CredentialFromSaltedPassword derives StoredKey and ServerKey from the
// SaltedPassword that AlterUserScramCredentials carries
// (ScramFormatter.generateCredential): StoredKey = H(HMAC(sp, "Client Key")),
// ServerKey = HMAC(sp, "Server Key").
func CredentialFromSaltedPassword(m Mechanism, salt, saltedPassword []byte, iterations int) (Credential, error) {
	h := m.newHash()
	if h == nil {
		return Credential{}, fmt.Errorf("derive credential: unsupported mechanism %q", m)
	}
	if len(saltedPassword) == 0 {
		return Credential{}, errors.New("derive credential: empty salted password")
	}
	clientKey := hmacSum(h, saltedPassword, []byte("Client Key"))
	sk := h()
	sk.Write(clientKey)
	return Credential{
		Salt:       append([]byte(nil), salt...),
		StoredKey:  sk.Sum(nil),
		ServerKey:  hmacSum(h, saltedPassword, []byte("Server Key")),
		Iterations: iterations,
	}, nil
}

// SaltedPassword is Hi(UTF8(password), salt, i) (RFC 5802), with no SASLprep.
func SaltedPassword(m Mechanism, password string, salt []byte, iterations int) ([]byte, error) {
	h := m.newHash()
	if h == nil {
		return nil, fmt.Errorf("salted password: unsupported mechanism %q", m)
	}
	return pbkdf2.Key(h, password, salt, iterations, m.HashSize())
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	mac := hmac.New(h, key)
	mac.Write(msg)
	return mac.Sum(nil)
}
