package credstore

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// devIterations is used for credentials derived from `password:` entries.
const devIterations = 4096

// Warning is something a loaded file does that works but should not: the
// caller logs it (it names the user, never a secret).
type Warning struct {
	User    string
	Message string
}

// FileOptions configures LoadFile.
type FileOptions struct {
	// Rand supplies salts for `password:` entries (required when the file
	// has any).
	Rand io.Reader
}

// LoadFile reads a credentials file:
//
//	users:
//	  alice:
//	    SCRAM-SHA-512: "salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=8192"
//	  bob:
//	    password: "dev-only"   # development only: derived for both mechanisms
//
// Unknown keys, malformed stored forms and empty names are errors naming the
// file, the user, the key and the line; they never quote a credential or a
// password.
func LoadFile(path string, o FileOptions) (*Snapshot, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err // names the path
	}
	snap, warns, err := Parse(data, o)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return snap, warns, nil
}

// Parse is LoadFile on bytes already read.
func Parse(data []byte, o FileOptions) (*Snapshot, []Warning, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, errors.New("not valid YAML") // the YAML error may quote a secret
	}
	snap := NewSnapshot()
	if len(doc.Content) == 0 {
		return snap, nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: expected a mapping with a users key", root.Line)
	}
	var errs []error
	var warns []Warning
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "users" {
			errs = append(errs, fmt.Errorf("line %d: unknown key %q (only users is allowed)", k.Line, k.Value))
			continue
		}
		if v.Kind != yaml.MappingNode {
			if v.Tag != "!!null" {
				errs = append(errs, fmt.Errorf("line %d: users must be a mapping of user names", v.Line))
			}
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			w, err := parseUser(snap, v.Content[j], v.Content[j+1], o)
			warns = append(warns, w...)
			errs = append(errs, err...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return snap, warns, nil
}

func parseUser(snap *Snapshot, name, body *yaml.Node, o FileOptions) ([]Warning, []error) {
	user := name.Value
	if user == "" {
		return nil, []error{fmt.Errorf("line %d: empty user name", name.Line)}
	}
	if body.Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("user %q (line %d): expected mechanisms or password", user, name.Line)}
	}
	var errs []error
	var warns []Warning
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("user %q, %s (line %d): expected a string", user, k.Value, k.Line))
			continue
		}
		if k.Value == "password" {
			if err := addPassword(snap, user, v.Value, o); err != nil {
				errs = append(errs, fmt.Errorf("user %q, password (line %d): %w", user, k.Line, err))
				continue
			}
			warns = append(warns, Warning{User: user, Message: "plaintext password in the credentials file: development only; store hashed credentials (scram-proxy users hash)"})
			continue
		}
		m, ok := sasl.ParseMechanism(k.Value)
		if !ok {
			errs = append(errs, fmt.Errorf("user %q (line %d): unknown key %q (SCRAM-SHA-512, SCRAM-SHA-256 or password)", user, k.Line, k.Value))
			continue
		}
		c, err := sasl.ParseStoredForm(m, v.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("user %q, %s (line %d): %w", user, m, k.Line, err))
			continue
		}
		if c.Iterations < sasl.MinIterations {
			warns = append(warns, Warning{User: user, Message: fmt.Sprintf("%s has %d iterations, below %d: logins will fail as in Kafka", m, c.Iterations, sasl.MinIterations)})
		}
		snap.Put(m, user, c)
	}
	return warns, errs
}

func addPassword(snap *Snapshot, user, password string, o FileOptions) error {
	if password == "" {
		return errors.New("empty password")
	}
	if o.Rand == nil {
		return errors.New("no randomness configured for salts")
	}
	for _, m := range sasl.Mechanisms() {
		salt := make([]byte, 24)
		if _, err := io.ReadFull(o.Rand, salt); err != nil {
			return err
		}
		c, err := sasl.DeriveCredential(m, password, salt, devIterations)
		if err != nil {
			return err
		}
		snap.Put(m, user, c)
	}
	return nil
}

// HashLine derives a stored-form credential line for password, for pasting
// into the credentials file. iterations 0 means 4096; it must lie within
// 4096..16384 (Kafka's bounds for written credentials).
func HashLine(m sasl.Mechanism, password string, iterations int, rand io.Reader) (string, error) {
	if iterations == 0 {
		iterations = sasl.MinIterations
	}
	if iterations < sasl.MinIterations || iterations > sasl.MaxIterations {
		return "", fmt.Errorf("iterations %d outside %d..%d", iterations, sasl.MinIterations, sasl.MaxIterations)
	}
	salt := make([]byte, 24)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", err
	}
	c, err := sasl.DeriveCredential(m, password, salt, iterations)
	if err != nil {
		return "", err
	}
	return c.StoredForm(), nil
}
