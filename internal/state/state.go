package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

var bucketTokens = []byte("delegation_tokens")

// DB is an open state database. It is safe for concurrent use.
type DB struct {
	db *bolt.DB
}

// Open opens (or creates) dir/state.db. Only one process may hold it: a
// second proxy on the same directory fails after a short wait rather than
// corrupting it.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state.dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "state.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketTokens)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// LoadTokens implements dtoken.TokenStore.
func (d *DB) LoadTokens() ([]dtoken.Info, error) {
	var out []dtoken.Info
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var i dtoken.Info
			if err := json.Unmarshal(v, &i); err != nil {
				return fmt.Errorf("token %q: %w", k, err)
			}
			if i.ID != string(k) {
				return errors.New("token record key does not match its id")
			}
			out = append(out, i)
			return nil
		})
	})
	return out, err
}

// PutToken implements dtoken.TokenStore; durable on return.
func (d *DB) PutToken(i dtoken.Info) error {
	v, err := json.Marshal(i)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTokens).Put([]byte(i.ID), v) })
}

// DeleteToken implements dtoken.TokenStore; durable on return.
func (d *DB) DeleteToken(id string) error {
	return d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTokens).Delete([]byte(id)) })
}
