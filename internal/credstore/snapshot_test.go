package credstore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// testCred is a credential for m whose bytes are all distinct from
// another seed's: salt of saltLen bytes, keys of m's hash size.
func testCred(m sasl.Mechanism, seed byte, saltLen int) sasl.Credential {
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	return sasl.Credential{
		Salt:       fill(saltLen, seed),
		StoredKey:  fill(m.HashSize(), seed+1),
		ServerKey:  fill(m.HashSize(), seed+2),
		Iterations: 4096 + int(seed),
	}
}

func sameCred(a, b sasl.Credential) bool {
	return bytes.Equal(a.Salt, b.Salt) && bytes.Equal(a.StoredKey, b.StoredKey) &&
		bytes.Equal(a.ServerKey, b.ServerKey) && a.Iterations == b.Iterations
}

// checkUser fails unless snap holds exactly want for user, through Get,
// lookup, Has and each.
func checkUser(t *testing.T, snap *Snapshot, user string, want map[sasl.Mechanism]sasl.Credential) {
	t.Helper()
	got := snap.Get(user)
	if len(want) == 0 {
		if got != nil || snap.Has(user) {
			t.Fatalf("%s: held (%d credentials), want none", user, len(got))
		}
	} else if !snap.Has(user) || len(got) != len(want) {
		t.Fatalf("%s: %d credentials, want %d", user, len(got), len(want))
	}
	for _, m := range sasl.Mechanisms() {
		w, ok := want[m]
		if g, has := got[m]; has != ok || ok && !sameCred(g, w) {
			t.Fatalf("%s %s: Get has=%v, want has=%v or other bytes", user, m, has, ok)
		}
		if g, has := snap.lookup(m, user); has != ok || ok && !sameCred(g, w) {
			t.Fatalf("%s %s: lookup has=%v, want has=%v or other bytes", user, m, has, ok)
		}
	}
	n := 0
	snap.each(func(u string, m sasl.Mechanism, c sasl.Credential) {
		if u != user {
			return
		}
		n++
		if w, ok := want[m]; !ok || !sameCred(c, w) {
			t.Fatalf("%s %s: each yields a credential not put", user, m)
		}
	})
	if n != len(want) {
		t.Fatalf("%s: each yields %d credentials, want %d", user, n, len(want))
	}
}

func TestSnapshotPutGetDeleteOverBothMechanisms(t *testing.T) {
	m256, m512 := sasl.ScramSHA256, sasl.ScramSHA512
	a256, a512 := testCred(m256, 10, 24), testCred(m512, 20, 32)
	snap := NewSnapshot()
	snap.Put(m512, "alice", a512)
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m512: a512})
	snap.Put(m256, "alice", a256)
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m256: a256, m512: a512})

	// Replacing one mechanism keeps the other, whatever the new lengths.
	b256 := testCred(m256, 30, 7)
	snap.Put(m256, "alice", b256)
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m256: b256, m512: a512})

	snap.Put(m256, "bob", a256)
	snap.Delete(m256, "alice")
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m512: a512})
	snap.Delete(m256, "alice") // not held: no change
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m512: a512})
	snap.Delete(m512, "alice")
	checkUser(t, snap, "alice", nil)
	checkUser(t, snap, "bob", map[sasl.Mechanism]sasl.Credential{m256: a256})
	if snap.Users() != 1 {
		t.Fatalf("%d users, want 1", snap.Users())
	}

	// Only the mechanisms logins use are held.
	snap.Put(sasl.Mechanism("PLAIN"), "carol", a512)
	checkUser(t, snap, "carol", nil)
	snap.Delete(sasl.Mechanism("PLAIN"), "bob")
	checkUser(t, snap, "bob", map[sasl.Mechanism]sasl.Credential{m256: a256})
}

func TestSnapshotSharesNoMemoryWithCallers(t *testing.T) {
	m := sasl.ScramSHA512
	in := testCred(m, 1, 24)
	want := testCred(m, 1, 24)
	snap := NewSnapshot()
	snap.Put(m, "alice", in)
	snap.Put(sasl.ScramSHA256, "alice", testCred(sasl.ScramSHA256, 50, 16))
	clear(in.Salt) // the caller's bytes, changed after Put
	clear(in.StoredKey)
	got := snap.Get("alice")[m]
	if !sameCred(got, want) {
		t.Fatal("a change to the credential put reached the snapshot")
	}

	// A copy from Get, changed, leaves the snapshot as it was.
	clear(got.Salt)
	clear(got.StoredKey)
	clear(got.ServerKey)
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m: want, sasl.ScramSHA256: testCred(sasl.ScramSHA256, 50, 16)})

	// What lookup shares is capped at each field: appending to one copies
	// instead of writing over the next field.
	c, _ := snap.lookup(m, "alice")
	for _, b := range [][]byte{c.Salt, c.StoredKey, c.ServerKey} {
		if cap(b) != len(b) {
			t.Fatalf("a field of len %d has cap %d", len(b), cap(b))
		}
	}
	_ = append(c.Salt, 0xff)
	checkUser(t, snap, "alice", map[sasl.Mechanism]sasl.Credential{m: want, sasl.ScramSHA256: testCred(sasl.ScramSHA256, 50, 16)})
}

func TestSnapshotCloneAndWithAreIndependent(t *testing.T) {
	m256, m512 := sasl.ScramSHA256, sasl.ScramSHA512
	orig := NewSnapshot()
	for i := range 1000 { // several users per shard
		orig.Put(m512, fmt.Sprintf("user%d", i), testCred(m512, byte(i), 24))
	}
	orig.Put(m256, "user7", testCred(m256, 7, 24))
	before := map[string]map[sasl.Mechanism]sasl.Credential{}
	for _, u := range []string{"user7", "user8", "user9"} {
		before[u] = orig.Get(u)
	}

	clone := orig.Clone()
	clone.Put(m512, "user7", testCred(m512, 99, 40))
	clone.Delete(m256, "user7")
	clone.Delete(m512, "user8")
	clone.Put(m256, "newcomer", testCred(m256, 3, 24))
	for u, creds := range before {
		checkUser(t, orig, u, creds)
	}
	checkUser(t, orig, "newcomer", nil)
	checkUser(t, clone, "user7", map[sasl.Mechanism]sasl.Credential{m512: testCred(m512, 99, 40)})
	checkUser(t, clone, "user8", nil)
	checkUser(t, clone, "user9", before["user9"])
	if orig.Users() != 1000 || clone.Users() != 1000 {
		t.Fatalf("users: original %d, clone %d; want 1000 each", orig.Users(), clone.Users())
	}

	// with leaves its snapshot alone and keeps none of the caller's map.
	creds := map[sasl.Mechanism]sasl.Credential{m256: testCred(m256, 60, 24)}
	next := orig.with("user9", creds)
	clear(creds[m256].Salt)
	checkUser(t, next, "user9", map[sasl.Mechanism]sasl.Credential{m256: testCred(m256, 60, 24)})
	checkUser(t, orig, "user9", before["user9"])
	gone := next.with("user9", nil)
	checkUser(t, gone, "user9", nil)
	checkUser(t, next, "user9", map[sasl.Mechanism]sasl.Credential{m256: testCred(m256, 60, 24)})
	if gone.Users() != 999 || next.Users() != 1000 {
		t.Fatalf("users: after the delete %d, before it %d", gone.Users(), next.Users())
	}
	// A user whose only credentials are for mechanisms not held is absent.
	if other := orig.with("user9", map[sasl.Mechanism]sasl.Credential{"PLAIN": testCred(m256, 1, 24)}); other.Has("user9") {
		t.Fatal("a user with no held mechanism is present")
	}
}
