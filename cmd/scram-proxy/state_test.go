package main

import (
	"bytes"
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/state"
)

// stateDir makes a state.dir holding the given users (each with one
// SCRAM-SHA-512 credential for password user+"-pw"), one token owned by
// alice, and the phantom secret.
func stateDir(t *testing.T, users ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, u := range users {
		c, err := sasl.DeriveCredential(sasl.ScramSHA512, u+"-pw", []byte("state-copy-salt-"+u), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PutUser(u, map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := dtoken.New(dtoken.Options{SecretKey: "state-copy-key", Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(dtoken.Caller{Principal: dtoken.Principal{Type: "User", Name: "alice"}}, "", "", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Secret("phantom_scram"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stateSummary lists what a state.dir holds: user → stored forms, token
// ids and secrets, for comparing two directories.
func stateSummary(t *testing.T, dir string) string {
	t.Helper()
	db, err := state.Inspect(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	users, err := db.LoadUsers()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range sortedNames(users) {
		b.WriteString("user " + u + " " + users[u][sasl.ScramSHA512].StoredForm() + "\n")
	}
	tokens, err := db.LoadTokens()
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		b.WriteString("token " + tok.ID + " " + tok.Owner.Name + " " + tok.Expiry.String() + "\n")
	}
	secrets, err := db.StoredSecrets()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sortedNames(secrets) {
		b.WriteString("secret " + n + " " + string(secrets[n]) + "\n")
	}
	return b.String()
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func runState(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"state"}, args...), strings.NewReader(""), &stdout, &stderr, nil)
	return code, stdout.String(), stderr.String()
}

func TestStateCopyTwiceChangesNothing(t *testing.T) {
	src := stateDir(t, "alice", "bob")
	dst := filepath.Join(t.TempDir(), "fresh") // created by the copy
	code, out, errOut := runState(t, "copy", "--from", "dir:"+src, "--to", "dir:"+dst)
	if code != exitOK {
		t.Fatalf("first copy: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"secrets: 1 copied", "users: 2 copied", "tokens: 1 copied"} {
		if !strings.Contains(out, want) {
			t.Errorf("first copy says %q; want %q", out, want)
		}
	}
	want := stateSummary(t, src)
	if got := stateSummary(t, dst); got != want {
		t.Fatalf("the copy holds\n%s\nthe source\n%s", got, want)
	}
	code, out, errOut = runState(t, "copy", "--from", "dir:"+src, "--to", "dir:"+dst)
	if code != exitOK {
		t.Fatalf("second copy: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"secrets: 0 copied, 0 replaced, 1 unchanged", "users: 0 copied, 0 replaced, 2 unchanged", "tokens: 0 copied, 0 replaced, 1 unchanged"} {
		if !strings.Contains(out, want) {
			t.Errorf("second copy says %q; want %q", out, want)
		}
	}
	if got := stateSummary(t, dst); got != want {
		t.Fatalf("the second copy changed the destination:\n%s", got)
	}
}

func TestStateCopyConflictWritesNothing(t *testing.T) {
	src := stateDir(t, "alice", "bob")
	// The destination holds another alice, with a credential of its own.
	dst := filepath.Join(t.TempDir(), "dst")
	db, err := state.Open(dst, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sasl.DeriveCredential(sasl.ScramSHA512, "other-pw", []byte("another-salt-0123456"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser("alice", map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := stateSummary(t, dst)
	code, out, errOut := runState(t, "copy", "--from", "dir:"+src, "--to", "dir:"+dst)
	if code != exitFailure || !strings.Contains(out, `conflict: user "alice" differs`) || !strings.Contains(errOut, "--overwrite replaces them") {
		t.Fatalf("copy over another alice: exit %d\n%s%s", code, out, errOut)
	}
	if stateSummary(t, dst) != before {
		t.Fatal("a refused copy wrote to the destination")
	}
	code, out, errOut = runState(t, "copy", "--from", "dir:"+src, "--to", "dir:"+dst, "--overwrite")
	if code != exitOK || !strings.Contains(out, "users: 1 copied, 1 replaced") {
		t.Fatalf("copy --overwrite: exit %d\n%s%s", code, out, errOut)
	}
}

func TestStateCopyRefusals(t *testing.T) {
	src := stateDir(t, "alice")
	held, err := state.Open(src, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	code, _, errOut := runState(t, "copy", "--from", "dir:"+src, "--to", "dir:"+dst)
	if code != exitFailure || !strings.Contains(errOut, "held open by another process") {
		t.Errorf("copy from a state.dir a proxy holds: exit %d, %s", code, errOut)
	}
	held.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"copy", "--from", "dir:" + src}, exitUsage, "--from and --to are required"},
		{[]string{"copy", "--from", "dir:" + src, "--to", "dir:" + src}, exitUsage, "the same store"},
		{[]string{"copy", "--from", "local", "--to", "dir:" + dst}, exitUsage, "give --config"},
		{[]string{"copy", "--from", "s3://x", "--to", "dir:" + dst}, exitUsage, "unknown store"},
		{[]string{"copy", "--from", "dir:" + filepath.Join(t.TempDir(), "none"), "--to", "dir:" + dst}, exitFailure, "holds no state.db"},
		{[]string{"move"}, exitUsage, "state copy"},
	} {
		code, out, errOut := runState(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("state %v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}
