package credstore

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func TestEditFileKeepsCommentsAndValidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	orig := "# team credentials\nusers:\n  bob:\n    password: dev-only # local only\n"
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("salt"), 4096)
	if err := EditFile(path, func(u *yaml.Node) error { SetCredential(u, "alice", sasl.ScramSHA512, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := EditFile(path, func(u *yaml.Node) error { SetCredential(u, "bob", sasl.ScramSHA512, c); return nil }); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "# team credentials") || strings.Contains(string(data), "dev-only") {
		t.Fatalf("comments lost or password kept:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	list, err := ListFile(path)
	if err != nil || len(list) != 2 || list[0].String() != "alice\tSCRAM-SHA-512 iterations=4096" {
		t.Fatalf("%v %v", list, err)
	}
	if err := EditFile(path, func(u *yaml.Node) error { return DeleteCredential(u, "carol", "") }); err == nil {
		t.Fatal("deleting a missing user succeeded")
	}
	if err := EditFile(path, func(u *yaml.Node) error { return DeleteCredential(u, "bob", sasl.ScramSHA512) }); err != nil {
		t.Fatal(err)
	}
	snap, _, err := LoadFile(path, FileOptions{Rand: rand.Reader})
	if err != nil || snap.Has("bob") || !snap.Has("alice") {
		t.Fatalf("after delete: %v", err)
	}
	// An edit that would produce an unloadable file writes nothing.
	before, _ := os.ReadFile(path)
	_ = EditFile(path, func(u *yaml.Node) error {
		u.Content = append(u.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "x"}, &yaml.Node{Kind: yaml.ScalarNode, Value: "y"})
		return nil
	})
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("an invalid edit was written")
	}
}
