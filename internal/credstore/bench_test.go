package credstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
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
