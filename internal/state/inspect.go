package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ErrInUse reports a state database another process holds open (a running
// proxy): it cannot be inspected until that process stops.
var ErrInUse = errors.New("state.db is held open by another process (a running proxy?)")

// inspectLockWait bounds how long Inspect waits for a running process's
// lock before reporting ErrInUse.
const inspectLockWait = time.Second

// Inspect looks at dir the way Open would use it, without changing
// anything: for checking a configuration. A directory or database that does
// not exist yet gives an empty read-only DB, provided Open could create it;
// an existing database is opened read-only. The DB reads what is stored, its
// Secret invents what Open would create, and writes fail. A database
// another process holds is ErrInUse. o is as for Open: bad records are
// reported to o.OnBadRecord.
func Inspect(dir string, o Options) (*DB, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := creatable(dir); err != nil {
			return nil, fmt.Errorf("state.dir %s: %w", dir, err)
		}
		return &DB{o: o, readOnly: true}, nil
	case err != nil:
		return nil, fmt.Errorf("state.dir %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("state.dir %s: not a directory", dir)
	}
	if err := checkPrivate(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "state.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return nil, fmt.Errorf("state.dir %s: cannot create state.db: %w", dir, err)
		}
		return &DB{o: o, readOnly: true}, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: inspectLockWait})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state.dir %s: %w", dir, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("state.dir %s: open state.db: %w", dir, err)
	}
	return &DB{db: db, o: o, readOnly: true}, nil
}

// creatable reports why MkdirAll(dir) would fail: the nearest existing
// ancestor must be a directory this process may write to.
func creatable(dir string) error {
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("cannot create it: %s is not a directory", p)
		}
		if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("cannot create it in %s: %w", p, err)
		}
		return nil
	}
}
