package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	db, err := Inspect(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Secret("phantom"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser("bob", nil); err == nil {
		t.Fatal("a write succeeded on an inspected state")
	}
	db.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Inspect created %s: %v", dir, err)
	}
}

func TestInspectReadsWhatOpenStored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Open, 0700
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := db.Secret("phantom")
	if err != nil {
		t.Fatal(err)
	}
	// While a proxy holds the database, it cannot be inspected.
	if _, err := Inspect(dir, Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("inspect while open: %v, want ErrInUse", err)
	}
	db.Close()
	ro, err := Inspect(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Secret("phantom")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("inspected secret differs: %v", err)
	}
}

// TestRefusesStateOthersCanRead: a state.dir (or state.db) that group or
// others may access is refused at every start, by Open and by Inspect, with
// the command that fixes it; not only when the proxy creates the directory.
func TestRefusesStateOthersCanRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Open, 0700
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, tc := range []struct {
		name           string
		dirMode, dbMod os.FileMode
		want           string
	}{
		{"group-readable directory", 0o750, 0o600, "chmod 700 " + dir},
		{"world-accessible directory", 0o701, 0o600, "chmod 700 " + dir},
		{"group-readable database", 0o700, 0o640, "chmod 600 " + filepath.Join(dir, "state.db")},
	} {
		if err := os.Chmod(dir, tc.dirMode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "state.db"), tc.dbMod); err != nil {
			t.Fatal(err)
		}
		for name, open := range map[string]func(string, Options) (*DB, error){"Open": Open, "Inspect": Inspect} {
			db, err := open(dir, Options{})
			if err == nil {
				db.Close()
				t.Errorf("%s: %s accepted it", tc.name, name)
				continue
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "state.dir ") {
				t.Errorf("%s: %s: %v; want the key and %q", tc.name, name, err, tc.want)
			}
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "state.db"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("private again, still refused: %v", err)
	}
	db.Close()
}
