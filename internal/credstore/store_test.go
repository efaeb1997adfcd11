package credstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func TestHashLineLoadsAndMatchesDerivation(t *testing.T) {
	line, err := HashLine(sasl.ScramSHA512, "s3cret", 8192, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, "s3cret") {
		t.Fatal("password in output")
	}
	c, err := sasl.ParseStoredForm(sasl.ScramSHA512, line)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sasl.DeriveCredential(sasl.ScramSHA512, "s3cret", c.Salt, 8192)
	if want.StoredForm() != line {
		t.Fatal("stored keys do not match a fresh derivation")
	}
	for _, it := range []int{4095, 16385} {
		if _, err := HashLine(sasl.ScramSHA512, "x", it, rand.Reader); err == nil {
			t.Errorf("iterations %d accepted", it)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	file := fmt.Sprintf("users:\n  alice:\n    SCRAM-SHA-512: %q\n  bob:\n    password: dev-only\n", line)
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, warns, err := LoadFile(path, FileOptions{Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || warns[0].User != "bob" || strings.Contains(warns[0].Message, "dev-only") {
		t.Fatalf("warnings %+v", warns)
	}
	s := NewStore(snap)
	ctx := context.Background()
	if _, err := s.LookupUser(ctx, sasl.ScramSHA512, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupUser(ctx, sasl.ScramSHA256, "alice"); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Fatalf("alice has no SHA-256: %v", err)
	}
	for _, m := range sasl.Mechanisms() {
		c, err := s.LookupUser(ctx, m, "bob")
		if err != nil || c.Iterations != 4096 || len(c.Salt) != 24 {
			t.Fatalf("bob %s: %v %v", m, c, err)
		}
	}
	if s.Users() != 2 {
		t.Fatalf("users %d", s.Users())
	}
}

func TestBadFileErrorsNameUsersNotSecrets(t *testing.T) {
	_, _, err := LoadFile("testdata/bad.yaml", FileOptions{Rand: rand.Reader})
	if err == nil {
		t.Fatal("bad file loaded")
	}
	msg := err.Error()
	for _, want := range []string{`user "alice", SCRAM-SHA-512 (line 3)`, `unknown key "SCRAM-SHA-1"`, "line 5: empty user name",
		`user "bob", SCRAM-SHA-256 (line 8)`, `unknown key "groups"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "TOPSECRETVALUE") || strings.Contains(msg, "c2FsdA") {
		t.Fatal("error quotes a credential")
	}
}

func TestLowIterationsWarn(t *testing.T) {
	c, _ := sasl.DeriveCredential(sasl.ScramSHA256, "x", []byte("salt"), 1000)
	_, warns, err := Parse([]byte(fmt.Sprintf("users:\n  u:\n    SCRAM-SHA-256: %q\n", c.StoredForm())), FileOptions{})
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0].Message, "1000") {
		t.Fatalf("%v %+v", err, warns)
	}
}

func TestReplaceUnderConcurrentLookups(t *testing.T) {
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "x", []byte("salt"), 4096)
	s := NewStore(nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_, _ = s.LookupUser(context.Background(), sasl.ScramSHA512, "u")
				}
			}
		}()
	}
	for i := 0; i < 1000; i++ {
		snap := NewSnapshot()
		if i%2 == 0 {
			snap.Put(sasl.ScramSHA512, "u", c)
		}
		s.Replace(snap)
	}
	close(stop)
	wg.Wait()
}

func FuzzLoadUsersYAML(f *testing.F) {
	b, _ := os.ReadFile("testdata/bad.yaml")
	f.Add(b)
	f.Add([]byte("users:\n  a:\n    password: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = Parse(data, FileOptions{Rand: bytes.NewReader(make([]byte, 1024))})
	})
}
