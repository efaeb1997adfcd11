package state

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// CopySource is a store whose whole state Copy reads: SCRAM users written
// through the admin API, delegation tokens, and the proxy's own secrets
// (only those stored: reading must not invent one).
type CopySource interface {
	LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error)
	LoadTokens() ([]dtoken.Info, error)
	StoredSecrets() (map[string][]byte, error)
}

// CopyDestination is a store Copy writes to. It is read first, so that
// only what differs is written.
type CopyDestination interface {
	CopySource
	PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error
	PutToken(i dtoken.Info) error
	PutSecret(name string, value []byte) error
}

// CopyOptions tunes Copy. The zero value copies what the destination
// lacks and refuses to replace anything.
type CopyOptions struct {
	// Overwrite replaces a destination record that differs from the
	// source's. Without it such a record is a conflict and nothing is
	// written.
	Overwrite bool
	// DryRun reports what would be written and writes nothing.
	DryRun bool

	_ struct{}
}

// Record kinds in a CopyReport, as the shared topic names them.
const (
	CopyUser   = "user"
	CopyToken  = "token"
	CopySecret = "secret"
)

// CopyReport says what Copy did (or, with DryRun, would do), per kind.
// It names records by user name, token id or secret name, never by value.
type CopyReport struct {
	Copied    map[string][]string // absent from the destination; written
	Replaced  map[string][]string // different in the destination; written (Overwrite)
	Unchanged map[string]int      // equal in the destination; not written
	Conflicts map[string][]string // different in the destination; not written
}

// Written is how many records Copy wrote (or would write).
func (r CopyReport) Written() int {
	n := 0
	for _, k := range []map[string][]string{r.Copied, r.Replaced} {
		for _, ids := range k {
			n += len(ids)
		}
	}
	return n
}

// ErrCopyConflicts: the destination holds records that differ from the
// source's, and CopyOptions.Overwrite is off; nothing was written.
var ErrCopyConflicts = errors.New("the destination holds different records under the same names")

// Copy makes every record of from present, with the same value, in to:
// users, tokens and secrets. It reads both sides first and writes only
// the records that are missing or (with Overwrite) different, so copying
// again, or copying into a store that already has the records, writes
// nothing: the second of two identical runs reports every record
// unchanged. Records only the destination has are kept. Conflicts are
// found before the first write: with any and no Overwrite, Copy writes
// nothing and returns ErrCopyConflicts with the report naming them.
// Secrets are written first, then users, then tokens; a write that fails
// stops the copy, and running it again resumes (what was written is then
// unchanged).
func Copy(from CopySource, to CopyDestination, o CopyOptions) (CopyReport, error) {
	r := CopyReport{Copied: map[string][]string{}, Replaced: map[string][]string{},
		Unchanged: map[string]int{}, Conflicts: map[string][]string{}}
	src, err := snapshot(from)
	if err != nil {
		return r, fmt.Errorf("read the source: %w", err)
	}
	dst, err := snapshot(to)
	if err != nil {
		return r, fmt.Errorf("read the destination: %w", err)
	}
	var writes []func() error
	plan := func(kind, id string, present, equal bool, write func() error) {
		switch {
		case present && equal:
			r.Unchanged[kind]++
			return
		case !present:
			r.Copied[kind] = append(r.Copied[kind], id)
		case o.Overwrite:
			r.Replaced[kind] = append(r.Replaced[kind], id)
		default:
			r.Conflicts[kind] = append(r.Conflicts[kind], id)
			return
		}
		writes = append(writes, write)
	}
	for _, name := range sortedKeys(src.secrets) {
		v := src.secrets[name]
		d, ok := dst.secrets[name]
		plan(CopySecret, name, ok, subtle.ConstantTimeCompare(v, d) == 1, func() error { return to.PutSecret(name, v) })
	}
	for _, user := range sortedKeys(src.users) {
		creds := src.users[user]
		d, ok := dst.users[user]
		plan(CopyUser, user, ok, sameCredentials(creds, d), func() error { return to.PutUser(user, creds) })
	}
	for _, id := range sortedKeys(src.tokens) {
		t := src.tokens[id]
		d, ok := dst.tokens[id]
		plan(CopyToken, id, ok, bytes.Equal(t.json, d.json), func() error { return to.PutToken(t.info) })
	}
	if len(r.Conflicts) > 0 && !o.Overwrite {
		return r, ErrCopyConflicts
	}
	if o.DryRun {
		return r, nil
	}
	for _, w := range writes {
		if err := w(); err != nil {
			return r, fmt.Errorf("write the destination: %w", err)
		}
	}
	return r, nil
}

// storeSnapshot is everything a store holds, keyed for comparison.
type storeSnapshot struct {
	users   map[string]map[sasl.Mechanism]sasl.Credential
	tokens  map[string]tokenRecord
	secrets map[string][]byte
}

// tokenRecord is a token and its JSON form: two tokens are the same record
// when their JSON is (both sides decoded it from what they store).
type tokenRecord struct {
	info dtoken.Info
	json []byte
}

func snapshot(s CopySource) (storeSnapshot, error) {
	var out storeSnapshot
	var err error
	if out.secrets, err = s.StoredSecrets(); err != nil {
		return out, err
	}
	if out.users, err = s.LoadUsers(); err != nil {
		return out, err
	}
	tokens, err := s.LoadTokens()
	if err != nil {
		return out, err
	}
	out.tokens = make(map[string]tokenRecord, len(tokens))
	for _, t := range tokens {
		j, err := json.Marshal(t)
		if err != nil {
			return out, fmt.Errorf("token %s: %w", t.ID, err)
		}
		out.tokens[t.ID] = tokenRecord{info: t, json: j}
	}
	return out, nil
}

// sameCredentials: the same mechanisms, each with the same stored form.
func sameCredentials(a, b map[sasl.Mechanism]sasl.Credential) bool {
	if len(a) != len(b) {
		return false
	}
	for m, c := range a {
		d, ok := b[m]
		if !ok || subtle.ConstantTimeCompare([]byte(c.StoredForm()), []byte(d.StoredForm())) != 1 {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String summarises the report, one line per kind ("users: 2 copied,
// 1 unchanged"), and names the conflicts.
func (r CopyReport) String() string {
	var b strings.Builder
	for _, kind := range []string{CopySecret, CopyUser, CopyToken} {
		fmt.Fprintf(&b, "%ss: %d copied, %d replaced, %d unchanged, %d conflicting\n", kind,
			len(r.Copied[kind]), len(r.Replaced[kind]), r.Unchanged[kind], len(r.Conflicts[kind]))
	}
	for _, kind := range []string{CopySecret, CopyUser, CopyToken} {
		for _, id := range r.Conflicts[kind] {
			fmt.Fprintf(&b, "conflict: %s %q differs in the destination\n", kind, id)
		}
	}
	return b.String()
}

// StoredSecrets implements CopySource: every secret stored, by name (on a
// database from Inspect, nothing is invented for a name not stored).
func (d *DB) StoredSecrets() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := d.view(bucketMeta, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// PutSecret implements CopyDestination: stores value as the secret name,
// replacing any; durable on return. Secret returns it from then on.
func (d *DB) PutSecret(name string, value []byte) error {
	if len(value) == 0 {
		return fmt.Errorf("secret %q: empty", name)
	}
	return d.update(bucketMeta, func(b *bolt.Bucket) error { return b.Put([]byte(name), value) })
}
