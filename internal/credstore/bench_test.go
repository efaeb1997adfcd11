package credstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// write100k writes a credentials file of n users. Deriving 100,000 distinct
// PBKDF2 credentials would take minutes, so every user shares one derived
// credential; loading still parses and validates each entry.
func writeUsers(b *testing.B, n int) string {
	b.Helper()
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("benchmark-salt-012345678"), 4096)
	line := c.StoredForm()
	var sb strings.Builder
	sb.WriteString("users:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  user%06d:\n    SCRAM-SHA-512: %q\n", i, line)
	}
	path := filepath.Join(b.TempDir(), "users.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLoad100kUsers: time to load a 100,000-user credentials file.
func BenchmarkLoad100kUsers(b *testing.B) {
	path := writeUsers(b, 100000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, _, err := LoadFile(path, FileOptions{Rand: rand.Reader})
		if err != nil || snap.Users() != 100000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/load")
}

// BenchmarkLogins100kUsers: complete SCRAM-SHA-512 logins (both rounds, the
// server side and a client whose salted password is cached, as real
// clients cache it per connection) against a 100,000-user store, reported
// as logins/s.
func BenchmarkLogins100kUsers(b *testing.B) {
	snap, _, err := LoadFile(writeUsers(b, 100000), FileOptions{Rand: rand.Reader})
	if err != nil {
		b.Fatal(err)
	}
	store := NewStore(snap)
	a := sasl.NewAuthenticator(sasl.Options{Users: store})
	clients := make([]*scram.Client, 64)
	for i := range clients {
		clients[i], _ = scram.SHA512.NewClientUnprepped(fmt.Sprintf("user%06d", i*1500), "pw", "")
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		cc := clients[i%len(clients)].NewConversation()
		conv, _ := a.Start(ctx, sasl.ScramSHA512)
		first, _ := cc.Step("")
		sf, err := conv.Step([]byte(first))
		if err != nil {
			b.Fatal(err)
		}
		final, _ := cc.Step(string(sf))
		sfin, err := conv.Step([]byte(final))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cc.Step(string(sfin)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
}

// BenchmarkApplyUser: one user record applied to the admin API's layer
// (what a shared state store does for every user record it reads) while
// the layer holds n users.
func BenchmarkApplyUser(b *testing.B) {
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "pw", []byte("benchmark-salt-012345678"), 4096)
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			persist := NewMemUsers()
			for i := range n {
				_ = persist.PutUser(fmt.Sprintf("user%06d", i), map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c})
			}
			a, err := NewAdmin(NewStore(nil), persist, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a.ApplyUser(fmt.Sprintf("user%06d", i%n), map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c})
			}
		})
	}
}

// genUsers is a UserStore whose LoadUsers returns n users, each with both
// mechanisms and key material of its own (as decoded from a state store),
// and which keeps nothing itself.
type genUsers struct{ n int }

func (g genUsers) LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error) {
	out := make(map[string]map[sasl.Mechanism]sasl.Credential, g.n)
	for i := range g.n {
		creds := map[sasl.Mechanism]sasl.Credential{}
		for _, m := range sasl.Mechanisms() {
			key := func(b byte) []byte { return bytes.Repeat([]byte{b}, m.HashSize()) }
			creds[m] = sasl.Credential{Salt: []byte(fmt.Sprintf("salt-%019d", i)), StoredKey: key(1), ServerKey: key(2), Iterations: 4096}
		}
		out[fmt.Sprintf("user%06d", i)] = creds
	}
	return out, nil
}

func (genUsers) PutUser(string, map[sasl.Mechanism]sasl.Credential) error { return nil }

// BenchmarkHeldUsers: what the admin API's layer holds for n users with
// both mechanisms once built (NewAdmin): heap objects and bytes per user
// after a collection, and the wall time of one full collection with the
// layer live (gc-ms; the garbage collector's mark work grows with the
// objects and pointers it has to visit).
func BenchmarkHeldUsers(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			var objects, held, gcTime float64
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				store := NewStore(nil)
				if _, err := NewAdmin(store, genUsers{n}, nil); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				t0 := time.Now()
				runtime.GC()
				gcTime += time.Since(t0).Seconds() * 1000
				if store.Users() != n {
					b.Fatalf("%d users held, want %d", store.Users(), n)
				}
				objects += float64(after.HeapObjects) - float64(before.HeapObjects)
				held += float64(after.HeapAlloc) - float64(before.HeapAlloc)
				runtime.KeepAlive(store)
			}
			b.ReportMetric(objects/float64(b.N)/float64(n), "objects/user")
			b.ReportMetric(held/float64(b.N)/float64(n), "B/user")
			b.ReportMetric(gcTime/float64(b.N), "gc-ms")
		})
	}
}
