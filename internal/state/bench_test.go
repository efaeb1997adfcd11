package state

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
)

// writeTokens fills a fresh state directory with n delegation tokens in one
// transaction. The first is issued by a Manager; the rest are copies of its
// record under new ids (issuing 10,000 for real would derive 20,000
// credentials and sync the disk 10,000 times), which is the same start-up
// work per token.
func writeTokens(b *testing.B, n int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "state") // created by Open, 0700
	db, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m, err := dtoken.New(dtoken.Options{SecretKey: "bench-key", Store: db})
	if err != nil {
		b.Fatal(err)
	}
	out, err := m.Create(dtoken.Caller{Principal: dtoken.Principal{Type: "User", Name: "owner"}}, "", "", nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := out.Token
	if err := db.db.Update(func(tx *bolt.Tx) error {
		for i := 1; i < n; i++ {
			rec := tmpl
			rec.ID = fmt.Sprintf("bench-token-%016d", i)
			rec.Owner.Name = fmt.Sprintf("owner%d", i%500)
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketTokens).Put([]byte(rec.ID), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkTokenStartup measures what a start spends on delegation tokens:
// opening state.dir and building the token manager from what it holds. The
// ratio between the sizes shows how start-up grows with the number of
// tokens; us/token is the cost of one more token: its record's JSON decode
// and one HMAC, no key derivation (BenchmarkManagerStart in
// internal/dtoken has the manager's part alone).
func BenchmarkTokenStartup(b *testing.B) {
	for _, n := range []int{10, 10000, 100000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			dir := writeTokens(b, n)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				db, err := Open(dir, Options{})
				if err != nil {
					b.Fatal(err)
				}
				m, err := dtoken.New(dtoken.Options{SecretKey: "bench-key", Store: db})
				if err != nil || m.Len() != n {
					b.Fatal(m.Len(), err)
				}
				db.Close()
			}
			perStart := time.Since(start).Seconds() / float64(b.N)
			b.ReportMetric(perStart*1000, "ms/start")
			b.ReportMetric(perStart*1e6/float64(n), "us/token")
		})
	}
}
