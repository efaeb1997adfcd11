//go:build unix

package state

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
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

// writeUsers adds n SCRAM users (SCRAM-SHA-512 and SCRAM-SHA-256 each) to
// the state directory dir in one transaction. They share one pair of
// derived credentials: deriving 200,000 would take minutes, and loading
// parses and validates each record all the same.
func writeUsers(b *testing.B, dir string, n int) {
	b.Helper()
	forms := map[string]string{}
	for _, m := range []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256} {
		c, err := sasl.DeriveCredential(m, "pw", []byte("bench-salt-0123456789abc"), 4096)
		if err != nil {
			b.Fatal(err)
		}
		forms[string(m)] = c.StoredForm()
	}
	v, err := json.Marshal(forms)
	if err != nil {
		b.Fatal(err)
	}
	db, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			if err := tx.Bucket(bucketUsers).Put(fmt.Appendf(nil, "user%06d", i), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}

// liveHeapMiB is the live heap after a full collection, in MiB.
func liveHeapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkStateStartup is what a start spends on the state of state.dir
// holding n users and n tokens: opening the database, loading the SCRAM
// users into the admin layer and building the token manager, as the proxy
// does before it listens. It reports s/ready, cpu-s/ready (the process's
// CPU time for it, less sensitive to other load on the machine) and
// MiB-held, the live heap the state then takes (the caches; the database is memory-mapped, its
// pages are not heap). internal/statelog's BenchmarkRestore is the same
// start from the state topic (state.backend kafka).
func BenchmarkStateStartup(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("users=%d,tokens=%d", n, n), func(b *testing.B) {
			dir := writeTokens(b, n)
			writeUsers(b, dir, n)
			var ready, held, cpu float64
			for range b.N {
				base := liveHeapMiB()
				start, cpu0 := time.Now(), cpuTime()
				db, err := Open(dir, Options{})
				if err != nil {
					b.Fatal(err)
				}
				users := credstore.NewStore(nil)
				if _, err := credstore.NewAdmin(users, db, nil); err != nil {
					b.Fatal(err)
				}
				m, err := dtoken.New(dtoken.Options{SecretKey: "bench-key", Store: db})
				if err != nil {
					b.Fatal(err)
				}
				ready += time.Since(start).Seconds()
				cpu += (cpuTime() - cpu0).Seconds()
				if m.Len() != n || users.Users() != n {
					b.Fatalf("ready with %d tokens and %d users, want %d of each", m.Len(), users.Users(), n)
				}
				held += liveHeapMiB() - base
				runtime.KeepAlive(users)
				runtime.KeepAlive(m)
				db.Close()
			}
			b.ReportMetric(ready/float64(b.N), "s/ready")
			b.ReportMetric(cpu/float64(b.N), "cpu-s/ready")
			b.ReportMetric(held/float64(b.N), "MiB-held")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
