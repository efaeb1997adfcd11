package state

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

var (
	bucketTokens = []byte("delegation_tokens")
	bucketUsers  = []byte("scram_users")
	bucketMeta   = []byte("meta")
)

// DB is an open state database. It is safe for concurrent use.
type DB struct {
	db *bolt.DB // nil: nothing stored yet (Inspect only)
	o  Options
	// readOnly DBs come from Inspect: writes fail.
	readOnly bool
}

// Options configures Open. The zero value is usable.
type Options struct {
	// OnBadRecord hears of each stored record that does not load (a
	// damaged file, or a record an older version wrote). The record is
	// skipped and left on disk, so one bad entry never stops the proxy;
	// the callback logs and counts it. It may be nil.
	OnBadRecord func(BadRecord)

	_ struct{}
}

// BadRecord names a stored record that was skipped and why. It carries no
// secret: Key is a user name or token id, and Err never quotes the
// record's content.
type BadRecord struct {
	Kind string // KindUser or KindToken
	Key  string
	Err  error
}

// The kinds of record a BadRecord names.
const (
	KindUser  = "scram_user"
	KindToken = "delegation_token"
)

func (d *DB) bad(kind, key string, err error) {
	if d.o.OnBadRecord != nil {
		d.o.OnBadRecord(BadRecord{Kind: kind, Key: key, Err: err})
	}
}

// checkPrivate refuses a state directory, or a state.db in it, that group
// or others may access: it holds the secret behind phantom logins, the
// stored keys of admin-API users and token metadata. MkdirAll's 0700 only
// applies to a directory it creates, so an existing one (a volume's mount
// point, a directory made by hand) is checked here, at every start.
func checkPrivate(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state.dir %s: %w", dir, err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("state.dir %s: mode %04o lets group or others in, and it holds secrets and stored keys: "+
			"run chmod 700 %s, or set state.dir to a subdirectory the proxy creates (a volume's mount point is often group-accessible)", dir, m, dir)
	}
	path := filepath.Join(dir, "state.db")
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("state.dir %s: state.db has mode %04o, which lets group or others read it: run chmod 600 %s", dir, fi.Mode().Perm(), path)
	}
	return nil
}

// errReadOnly is a write to a DB from Inspect.
var errReadOnly = errors.New("state: opened read-only for inspection")

// Open opens (or creates) dir/state.db. Only one process may hold it: a
// second proxy on the same directory fails after a short wait rather than
// corrupting it. A directory or database that group or others may access
// is refused (checkPrivate), whoever created it.
func Open(dir string, o Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state.dir %s: %w", dir, err)
	}
	if err := checkPrivate(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "state.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("state.dir %s: open state.db: %w", dir, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTokens, bucketUsers, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("state.dir %s: open state.db: %w", dir, err)
	}
	return &DB{db: db, o: o}, nil
}

// Close closes the database.
func (d *DB) Close() error {
	if d.db == nil {
		return nil
	}
	return d.db.Close()
}

// view runs fn in a read transaction on bucket b; a database that does not
// exist yet, or lacks the bucket, has nothing to read.
func (d *DB) view(b []byte, fn func(*bolt.Bucket) error) error {
	if d.db == nil {
		return nil
	}
	return d.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(b); bk != nil {
			return fn(bk)
		}
		return nil
	})
}

// update runs fn in a write transaction on bucket b.
func (d *DB) update(b []byte, fn func(*bolt.Bucket) error) error {
	if d.readOnly {
		return errReadOnly
	}
	return d.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(b)) })
}

// LoadTokens implements dtoken.TokenStore. Records that do not decode, or
// whose key is not their id, are skipped and reported to OnBadRecord.
func (d *DB) LoadTokens() ([]dtoken.Info, error) {
	var out []dtoken.Info
	err := d.view(bucketTokens, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			var i dtoken.Info
			if err := json.Unmarshal(v, &i); err != nil {
				d.bad(KindToken, string(k), errNotJSON)
				return nil
			}
			if i.ID != string(k) {
				d.bad(KindToken, string(k), errors.New("record key does not match its token id"))
				return nil
			}
			out = append(out, i)
			return nil
		})
	})
	return out, err
}

// errNotJSON replaces encoding/json's messages, which may quote a byte of
// the record.
var errNotJSON = errors.New("not a valid JSON record")

// PutToken implements dtoken.TokenStore; durable on return.
func (d *DB) PutToken(i dtoken.Info) error {
	v, err := json.Marshal(i)
	if err != nil {
		return err
	}
	return d.update(bucketTokens, func(b *bolt.Bucket) error { return b.Put([]byte(i.ID), v) })
}

// DeleteToken implements dtoken.TokenStore; durable on return.
func (d *DB) DeleteToken(id string) error {
	return d.update(bucketTokens, func(b *bolt.Bucket) error { return b.Delete([]byte(id)) })
}

// LoadUsers implements credstore.UserStore: user → mechanism → credential,
// stored in Kafka's text form (salt, StoredKey, ServerKey, iterations). A
// record or credential that does not pass sasl.ParseStoredForm, the check
// every write passes too, is skipped and reported to OnBadRecord.
func (d *DB) LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error) {
	out := map[string]map[sasl.Mechanism]sasl.Credential{}
	err := d.view(bucketUsers, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			user := string(k)
			var forms map[string]string
			if err := json.Unmarshal(v, &forms); err != nil {
				d.bad(KindUser, user, errNotJSON)
				return nil
			}
			creds := map[sasl.Mechanism]sasl.Credential{}
			for name, form := range forms {
				m, ok := sasl.ParseMechanism(name)
				if !ok {
					d.bad(KindUser, user, errors.New("unknown mechanism"))
					continue
				}
				c, err := sasl.ParseStoredForm(m, form)
				if err != nil {
					d.bad(KindUser, user, fmt.Errorf("%s: %w", m, err))
					continue
				}
				creds[m] = c
			}
			if len(creds) > 0 {
				out[user] = creds
			}
			return nil
		})
	})
	return out, err
}

// PutUser implements credstore.UserStore; durable on return. Every
// credential must pass Validate, the check LoadUsers applies, so nothing is
// stored that would not load.
func (d *DB) PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error {
	for m, c := range creds {
		if err := c.Validate(m); err != nil {
			return fmt.Errorf("user %q, %s: %w", user, m, err)
		}
	}
	return d.update(bucketUsers, func(b *bolt.Bucket) error {
		if len(creds) == 0 {
			return b.Delete([]byte(user))
		}
		forms := map[string]string{}
		for m, c := range creds {
			forms[string(m)] = c.StoredForm()
		}
		v, err := json.Marshal(forms)
		if err != nil {
			return err
		}
		return b.Put([]byte(user), v)
	})
}

// Secret returns a 32-byte random secret named name, created on first use
// and stable across restarts (for phantom SCRAM challenges). A read-only DB
// returns the stored secret or, without one, a fresh random one that it
// does not store.
func (d *DB) Secret(name string) ([]byte, error) {
	var out []byte
	if d.readOnly {
		err := d.view(bucketMeta, func(b *bolt.Bucket) error {
			out = append([]byte(nil), b.Get([]byte(name))...)
			return nil
		})
		if err != nil || len(out) > 0 {
			return out, err
		}
		out = make([]byte, 32)
		_, err = rand.Read(out)
		return out, err
	}
	err := d.update(bucketMeta, func(b *bolt.Bucket) error {
		if v := b.Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
			return nil
		}
		out = make([]byte, 32)
		if _, err := rand.Read(out); err != nil {
			return err
		}
		return b.Put([]byte(name), out)
	})
	return out, err
}
