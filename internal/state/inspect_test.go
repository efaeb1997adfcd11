package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
	dir := t.TempDir()
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
