package credstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// challenge returns the iterations and salt of the server-first message
// name gets for SCRAM-SHA-512.
func challenge(t *testing.T, a *sasl.Authenticator, name string) (int, []byte) {
	t.Helper()
	conv, err := a.Start(context.Background(), sasl.ScramSHA512)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := conv.Step([]byte("n,,n=" + name + ",r=clientnonce"))
	if err != nil {
		t.Fatalf("%s: round 1: %v", name, err)
	}
	parts := strings.Split(string(sf), ",")
	salt, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(parts[1], "s="))
	if err != nil {
		t.Fatal(err)
	}
	iters, err := strconv.Atoi(strings.TrimPrefix(parts[2], "i="))
	if err != nil {
		t.Fatal(err)
	}
	return iters, salt
}

// kafkaToolSalt is a salt as Kafka's tools make one
// (ScramFormatter.secureRandomBytes): a random 130-bit number in base 36.
func kafkaToolSalt(t *testing.T) []byte {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 130))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(n.Text(36))
}

func randomSalt(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// cheapCred is a credential with the given salt and iterations. Its keys are
// not derived from a password (no login is attempted), only the challenge
// shape matters here.
func cheapCred(salt []byte, iterations int) sasl.Credential {
	return sasl.Credential{Salt: salt, StoredKey: make([]byte, 64), ServerKey: make([]byte, 64), Iterations: iterations}
}

func isBase36(b []byte) bool {
	return len(b) > 0 && strings.Trim(string(b), "0123456789abcdefghijklmnopqrstuvwxyz") == ""
}

// shapeKey summarises what a challenge shows: iterations and salt form.
func shapeKey(iters int, salt []byte) string {
	if isBase36(salt) && len(salt) >= 20 && len(salt) <= 26 {
		return fmt.Sprintf("i=%d,base36", iters)
	}
	return fmt.Sprintf("i=%d,bytes=%d", iters, len(salt))
}

// TestPhantomChallengeMatchesRealUsers: an unknown user's challenge must
// show what real users' challenges show (iterations, salt length and salt
// alphabet), whatever tool created them, stay the same per name, and follow
// the mix of real users without reshuffling every name when it changes.
func TestPhantomChallengeMatchesRealUsers(t *testing.T) {
	key := []byte("phantom-key")
	t.Run("users add: 8192 iterations, 24 random bytes", func(t *testing.T) {
		snap := NewSnapshot()
		for i := range 20 {
			snap.Put(sasl.ScramSHA512, fmt.Sprintf("user%d", i), cheapCred(randomSalt(t, 24), 8192))
		}
		a := sasl.NewAuthenticator(sasl.Options{Users: NewStore(snap), PhantomKey: key})
		realIters, realSalt := challenge(t, a, "user3")
		for _, name := range []string{"nobody", "mallory", "user20"} {
			iters, salt := challenge(t, a, name)
			if iters != realIters || len(salt) != len(realSalt) || isBase36(salt) {
				t.Errorf("%s: i=%d salt %d bytes (base36 %v); real users: i=%d salt %d random bytes",
					name, iters, len(salt), isBase36(salt), realIters, len(realSalt))
			}
		}
	})
	t.Run("kafka tools: 4096 iterations, base-36 salt", func(t *testing.T) {
		snap := NewSnapshot()
		for i := range 20 {
			snap.Put(sasl.ScramSHA512, fmt.Sprintf("user%d", i), cheapCred(kafkaToolSalt(t), 4096))
		}
		a := sasl.NewAuthenticator(sasl.Options{Users: NewStore(snap), PhantomKey: key})
		for _, name := range []string{"nobody", "mallory", "user20"} {
			iters, salt := challenge(t, a, name)
			if iters != 4096 || !isBase36(salt) || len(salt) < 20 || len(salt) > 26 {
				t.Errorf("%s: i=%d salt of %d bytes (base36 %v); real users have i=4096 and a base-36 salt of about 25 characters", name, iters, len(salt), isBase36(salt))
			}
		}
	})
	t.Run("a mix, stable per name and across a reload", func(t *testing.T) {
		snap := NewSnapshot()
		for i := range 40 {
			if i < 30 {
				snap.Put(sasl.ScramSHA512, fmt.Sprintf("user%d", i), cheapCred(randomSalt(t, 24), 8192))
			} else {
				snap.Put(sasl.ScramSHA512, fmt.Sprintf("user%d", i), cheapCred(kafkaToolSalt(t), 4096))
			}
		}
		store := NewStore(snap)
		a := sasl.NewAuthenticator(sasl.Options{Users: store, PhantomKey: key})
		const names = 2000
		before := map[string]string{}
		counts := map[string]int{}
		for i := range names {
			name := fmt.Sprintf("ghost-%d", i)
			iters, salt := challenge(t, a, name)
			k := shapeKey(iters, salt)
			before[name] = k
			counts[k]++
			if i%100 == 0 {
				if iters2, salt2 := challenge(t, a, name); iters2 != iters || string(salt2) != string(salt) {
					t.Fatalf("%s: challenge changed between two logins", name)
				}
			}
		}
		if len(counts) != 2 || counts["i=8192,bytes=24"] < names*65/100 || counts["i=8192,bytes=24"] > names*85/100 ||
			counts["i=4096,base36"] < names*15/100 || counts["i=4096,base36"] > names*35/100 {
			t.Fatalf("phantom shapes %v for 30 users of i=8192,bytes=24 and 10 of i=4096,base36", counts)
		}

		// One more user, of a shape nobody had: about 1/41 of the names
		// should move, and only to the new shape.
		next := snap.Clone()
		next.Put(sasl.ScramSHA512, "newcomer", cheapCred(randomSalt(t, 32), 16384))
		store.Replace(next)
		moved := 0
		for name, k := range before {
			iters, salt := challenge(t, a, name)
			if now := shapeKey(iters, salt); now != k {
				moved++
				if now != "i=16384,bytes=32" {
					t.Errorf("%s moved from %s to %s, not to the new shape", name, k, now)
				}
			}
		}
		if moved == 0 || moved > names*6/100 {
			t.Errorf("%d of %d names changed shape after adding one user to 40", moved, names)
		}
	})
}
