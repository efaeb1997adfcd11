//go:build unix

package statelog

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// The benchmarks here measure a proxy's start with state.backend kafka:
// restoring the state topic and building the token and user caches from
// it, up to the point where the proxy reports ready, then token logins
// against what was restored. The topic is on kfake (three brokers, in this
// process), so the figures are the proxy's side: reading, opening and
// decoding the records, and the caches.

const benchTokenKey = "bench-key"

// benchTopic is a kfake cluster whose state topic holds users users and
// tokens tokens, sealed under key k1 as proxies write them. Deriving a
// SCRAM credential per user and issuing every token for real would take
// minutes: every user shares one pair of derived credentials
// (SCRAM-SHA-512 and SCRAM-SHA-256) and every token is a copy of one token
// a Manager issued, under its own id and one of 500 owners; each record is
// still sealed on its own and opened and decoded on its own at restore.
// It returns the token ids and the password of the token they copy (the
// base64 of its HMAC; each copy's stored credential is derived from it).
func benchTopic(b *testing.B, users, tokens int) (c *kfake.Cluster, ids []string, password string) {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	keys := testKeyring(b, "k1")
	// The topic as a proxy creates it (compacted, its replication
	// settings), before any record.
	l, err := Open(Options{Client: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Restore(ctx, nil); err != nil {
		b.Fatal(err)
	}
	l.Close()

	m, err := dtoken.New(dtoken.Options{SecretKey: benchTokenKey})
	if err != nil {
		b.Fatal(err)
	}
	out, err := m.Create(dtoken.Caller{Principal: dtoken.Principal{Type: "User", Name: "owner0"}}, "", "", nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	password = base64.StdEncoding.EncodeToString(out.HMAC)
	creds := map[sasl.Mechanism]sasl.Credential{}
	for _, mech := range []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256} {
		if creds[mech], err = sasl.DeriveCredential(mech, "pw", []byte("bench-salt-0123456789abc"), 4096); err != nil {
			b.Fatal(err)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(DefaultTopic),
		kgo.MaxBufferedRecords(100000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	var produceErr error
	put := func(kind, id string, plain []byte) {
		key := recordKey(kind, id)
		value, err := keys.seal(key, plain)
		if err != nil {
			b.Fatal(err)
		}
		cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				produceErr = errors.Join(produceErr, err)
				mu.Unlock()
			}
		})
	}
	for i := range users {
		user := fmt.Sprintf("user%06d", i)
		plain, err := encodeUser(user, creds)
		if err != nil {
			b.Fatal(err)
		}
		put(KindUser, user, plain)
	}
	for i := range tokens {
		rec := out.Token
		rec.ID = fmt.Sprintf("bench-token-%010d", i)
		rec.Owner.Name = "owner" + strconv.Itoa(i%500)
		plain, err := json.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		put(KindToken, rec.ID, plain)
		ids = append(ids, rec.ID)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if produceErr != nil {
		b.Fatal(produceErr)
	}
	return c, ids, password
}

// started is what a proxy holds once ready: the restored and tailing log
// and the caches built from it.
type started struct {
	log    *Log
	tokens *dtoken.Manager
	users  *credstore.Store
	admin  *credstore.Admin
}

// start is a proxy's start-up with state.backend kafka, in the order the
// proxy runs it: open the log and restore it to the end offset seen at
// start, build the user layer and the token manager from the records
// restored, then start the tail feeding them. restored is when Restore
// returned; afterRestore, when not nil, runs then. The caller closes the
// log.
func start(b *testing.B, c *kfake.Cluster, afterRestore func()) (s started, restored time.Time) {
	b.Helper()
	l, err := Open(Options{Client: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Keys: testKeyring(b, "k1")})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := l.Restore(ctx, nil); err != nil {
		b.Fatal(err)
	}
	restored = time.Now()
	if afterRestore != nil {
		afterRestore()
	}
	users := credstore.NewStore(nil)
	admin, err := credstore.NewAdmin(users, l, nil)
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := dtoken.New(dtoken.Options{SecretKey: benchTokenKey, Store: l})
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Start(context.Background(), tokens, admin); err != nil {
		b.Fatal(err)
	}
	return started{l, tokens, users, admin}, restored
}

// heapMiB is the live heap after a full collection, in MiB.
func heapMiB() float64 {
	mib, _ := heapNow()
	return mib
}

// heapNow is the live heap after a full collection: MiB, and the number of
// objects in it (what each collection marks).
func heapNow() (mib float64, objects uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20), ms.HeapObjects
}

// BenchmarkRestore is a proxy's start with state.backend kafka over a
// state topic of n users and n tokens, up to ready (start). It reports
// s/ready (Open to the tail started), of which s/restore reading and
// decoding the topic; cpu-s/ready, the CPU time the process spent on it
// (kfake serving the fetches included), which depends less than s/ready on
// other load on the machine; MiB-held, the live heap the proxy then holds for its
// state (the log's decoded records and clients, and the caches; after a
// collection, kfake's copy of the topic excluded), objects-held/record, the
// heap objects that adds per user or token record (each collection marks
// every one of them, so they are what a large state costs every later
// allocation), and of MiB-held MiB-log, what
// the log alone holds once restored (measured in one more, untimed start).
// The target: 100,000 users and 100,000 tokens ready within 10 s
// on the project's 2-core machine (not asserted here).
func BenchmarkRestore(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("users=%d,tokens=%d", n, n), func(b *testing.B) {
			c, _, _ := benchTopic(b, n, n)
			var restore, ready, held, cpu, objects float64
			for range b.N {
				base, objects0 := heapNow()
				t0, cpu0 := time.Now(), cpuTime()
				s, restored := start(b, c, nil)
				done := time.Now()
				cpu += (cpuTime() - cpu0).Seconds()
				if s.tokens.Len() != n || s.users.Users() != n {
					b.Fatalf("ready with %d tokens and %d users, want %d of each", s.tokens.Len(), s.users.Users(), n)
				}
				restore += restored.Sub(t0).Seconds()
				ready += done.Sub(t0).Seconds()
				mib, objects1 := heapNow()
				held += mib - base
				objects += float64(objects1) - float64(objects0)
				runtime.KeepAlive(s)
				s.log.Close()
			}
			// Once more, untimed, to see the log's part of the heap: what
			// it holds once restored, before the caches are built.
			b.StopTimer()
			base := heapMiB()
			var logHeld float64
			s, _ := start(b, c, func() { logHeld = heapMiB() - base })
			s.log.Close()
			b.ReportMetric(logHeld, "MiB-log")
			b.ReportMetric(ready/float64(b.N), "s/ready")
			b.ReportMetric(cpu/float64(b.N), "cpu-s/ready")
			b.ReportMetric(restore/float64(b.N), "s/restore")
			b.ReportMetric(held/float64(b.N), "MiB-held")
			b.ReportMetric(objects/float64(b.N)/float64(2*n), "objects-held/record")
		})
	}
}

// BenchmarkRestoredTokenLogin is a whole token login (SCRAM-SHA-512,
// tokenauth=true, both rounds at the server) against a proxy started from
// a state topic of n users and n tokens, each login with the next token in
// turn: with 100,000 tokens nearly every login is that token's first. The
// client's salted password is computed once (every token is a copy of one,
// so all share its salt and password); without that the client's PBKDF2
// would be most of what is measured. Compare logins/s (and cpu-ns/login,
// the process's CPU time per login, less sensitive to other load on the
// machine) between n=10 and n=100000; the target is within 10%.
func BenchmarkRestoredTokenLogin(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("users=%d,tokens=%d", n, n), func(b *testing.B) {
			c, ids, password := benchTopic(b, n, n)
			s, _ := start(b, c, nil)
			defer s.log.Close()
			a := sasl.NewAuthenticator(sasl.Options{Users: s.users, Tokens: s.tokens, RejectExpiredTokens: true})
			var sp []byte
			salted := func(salt []byte, iters int) ([]byte, error) {
				if sp == nil {
					var err error
					sp, err = sasl.SaltedPassword(sasl.ScramSHA512, password, salt, iters)
					return sp, err
				}
				return sp, nil
			}
			runtime.GC()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				if err := tokenLogin(a, ids[i%n], salted); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/login")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tokenLogin is the client side of a SCRAM-SHA-512 token login (as Kafka's
// clients send it: tokenauth=true) for token id against a, with salted
// giving the salted password for the server's salt and iterations.
func tokenLogin(a *sasl.Authenticator, id string, salted func(salt []byte, iters int) ([]byte, error)) error {
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha512.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	bare := "n=" + id + ",r=benchclientnonce,tokenauth=true"
	conv, err := a.Start(context.Background(), sasl.ScramSHA512)
	if err != nil {
		return err
	}
	first, err := conv.Step([]byte("n,," + bare))
	if err != nil {
		return err
	}
	var nonce, salt64 string
	iters := 0
	for _, f := range strings.Split(string(first), ",") {
		switch k, v, _ := strings.Cut(f, "="); k {
		case "r":
			nonce = v
		case "s":
			salt64 = v
		case "i":
			iters, _ = strconv.Atoi(v)
		}
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return err
	}
	sp, err := salted(salt, iters)
	if err != nil {
		return err
	}
	clientKey := mac(sp, "Client Key")
	storedKey := sha512.Sum512(clientKey)
	final := "c=biws,r=" + nonce
	sig := mac(storedKey[:], bare+","+string(first)+","+final)
	proof := make([]byte, len(sig))
	subtle.XORBytes(proof, clientKey, sig)
	_, err = conv.Step([]byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	return err
}
