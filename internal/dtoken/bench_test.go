//go:build unix

package dtoken

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// tokenRecords returns n stored token records as one Manager issues them
// (the first issued for real, the rest copies under new ids and owners),
// so building a Manager over them does the per-token start-up work. It
// also returns the password (base64 of the HMAC) of the token they copy,
// which their stored credentials were derived from.
func tokenRecords(b *testing.B, n int) (*MemStore, string) {
	b.Helper()
	c := &clock{time.Now()}
	m, err := New(Options{SecretKey: "bench-key", Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	out, err := m.Create(alice, "", "", nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	s := NewMemStore()
	for i := range n {
		rec := out.Token
		rec.ID = fmt.Sprintf("bench-token-%010d", i)
		rec.Owner.Name = fmt.Sprintf("owner%d", i%500)
		s.m[rec.ID] = rec
	}
	return s, base64.StdEncoding.EncodeToString(out.HMAC)
}

// BenchmarkManagerStart is New over n stored tokens, the store's decoding
// left out: what the Manager itself spends per token at start.
func BenchmarkManagerStart(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			s, _ := tokenRecords(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				m, err := New(Options{SecretKey: "bench-key", Store: s})
				if err != nil || m.Len() != n {
					b.Fatal(m.Len(), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/token")
		})
	}
}

// BenchmarkTokenLogin is a whole tokenauth SCRAM-SHA-512 login against a
// Manager holding n tokens, each login with the next token in turn: with
// warm=false nearly every login with 100,000 tokens is that token's first
// (its stored credential parsed then), with warm=true every token has
// logged in once before. The client's salted password is computed once
// (the records are copies of one token, so all share its salt and
// password), or the client's PBKDF2 would be most of what is measured.
// Compare cpu-ns/login (the process's CPU time, GC included, which a
// loaded machine disturbs less than wall time) between the sizes. A larger
// live heap costs more GC marking per login, and a process holding 10
// tokens has almost none; through the proxy a login also costs its TLS
// handshake, hundreds of microseconds, which puts the difference between
// the sizes well under 1% of a login there.
func BenchmarkTokenLogin(b *testing.B) {
	for _, tc := range []struct {
		n    int
		warm bool
	}{{10, false}, {100000, false}, {100000, true}} {
		n := tc.n
		b.Run(fmt.Sprintf("tokens=%d,warm=%v", n, tc.warm), func(b *testing.B) {
			s, password := tokenRecords(b, n)
			ids := make([]string, 0, n)
			for id := range s.m {
				ids = append(ids, id)
			}
			// The Manager's own heap only, as over state.dir, whose
			// records are not kept in memory once loaded.
			m, err := New(Options{SecretKey: "bench-key", Store: &loadOnce{s}})
			if err != nil {
				b.Fatal(err)
			}
			a := sasl.NewAuthenticator(sasl.Options{Users: sasl.UserLookupFunc(func(context.Context, sasl.Mechanism, string) (sasl.Credential, error) {
				return sasl.Credential{}, sasl.ErrUnknownCredential
			}), Tokens: m})
			var sp []byte
			salted := func(salt []byte, iters int) ([]byte, error) {
				if sp == nil {
					var err error
					sp, err = sasl.SaltedPassword(sasl.ScramSHA512, password, salt, iters)
					return sp, err
				}
				return sp, nil
			}
			if tc.warm {
				for _, id := range ids {
					if err := scramTokenLogin(a, sasl.ScramSHA512, id, salted); err != nil {
						b.Fatal(err)
					}
				}
			}
			runtime.GC()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := scramTokenLogin(a, sasl.ScramSHA512, ids[i%n], salted); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/login")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadOnce hands its store's records to the Manager and lets go of them.
type loadOnce struct{ s *MemStore }

func (l *loadOnce) LoadTokens() ([]Info, error) {
	infos, err := l.s.LoadTokens()
	l.s = nil
	return infos, err
}

func (*loadOnce) PutToken(Info) error      { return nil }
func (*loadOnce) DeleteToken(string) error { return nil }
