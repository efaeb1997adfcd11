package sasl

import (
	"bytes"
	"testing"
)

func testCred(seed byte, hashSize, iterations int) Credential {
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	return Credential{Salt: fill(12, seed), StoredKey: fill(hashSize, seed+1), ServerKey: fill(hashSize, seed+2), Iterations: iterations}
}

func sameCred(a, b Credential) bool {
	return bytes.Equal(a.Salt, b.Salt) && bytes.Equal(a.StoredKey, b.StoredKey) &&
		bytes.Equal(a.ServerKey, b.ServerKey) && a.Iterations == b.Iterations
}

// TestCredentialSet: a set gives back what it was built with, per
// mechanism, through Get, With, Without and Map; it never changes once
// built, and nothing a caller does to what it returns reaches it.
func TestCredentialSet(t *testing.T) {
	c256, c512 := testCred(1, 32, 4096), testCred(10, 64, 8192)
	var zero CredentialSet
	if !zero.Empty() || zero.Map() != nil {
		t.Fatal("the zero set is not empty")
	}
	if _, ok := zero.Get(ScramSHA256); ok {
		t.Fatal("the zero set has a credential")
	}

	s := NewCredentialSet(map[Mechanism]Credential{ScramSHA256: c256, ScramSHA512: c512, "PLAIN": c256})
	if got := len(s.Map()); got != 2 {
		t.Fatalf("set of %d credentials, want 2 (PLAIN left out)", got)
	}
	for m, want := range map[Mechanism]Credential{ScramSHA256: c256, ScramSHA512: c512} {
		if got, ok := s.Get(m); !ok || !sameCred(got, want) {
			t.Fatalf("%s: got %v, %v", m, got, ok)
		}
	}

	// What Get returns is capped: an append copies.
	got, _ := s.Get(ScramSHA256)
	_ = append(got.Salt, 0xee, 0xee, 0xee, 0xee)
	_ = append(got.StoredKey, 0xee)
	if again, _ := s.Get(ScramSHA256); !sameCred(again, c256) {
		t.Fatal("appending to what Get returned changed the set")
	}
	// Map copies.
	m := s.Map()
	m[ScramSHA512].Salt[0] ^= 0xff
	if again, _ := s.Get(ScramSHA512); !sameCred(again, c512) {
		t.Fatal("writing to what Map returned changed the set")
	}
	// The set copies what it is built with.
	c256.Salt[0] ^= 0xff
	if again, _ := s.Get(ScramSHA256); bytes.Equal(again.Salt, c256.Salt) {
		t.Fatal("the set shares the bytes it was built with")
	}
	c256.Salt[0] ^= 0xff

	// With and Without build new sets and leave s as it was.
	other := testCred(20, 32, 5000)
	w := s.With(ScramSHA256, other)
	if got, _ := w.Get(ScramSHA256); !sameCred(got, other) {
		t.Fatal("With did not replace the credential")
	}
	if got, _ := w.Get(ScramSHA512); !sameCred(got, c512) {
		t.Fatal("With changed another mechanism's credential")
	}
	if got, _ := s.Get(ScramSHA256); !sameCred(got, c256) {
		t.Fatal("With changed the set it was called on")
	}
	if s.With("PLAIN", other).Map()["PLAIN"].Iterations != 0 {
		t.Fatal("With took a mechanism the package does not implement")
	}
	wo := s.Without(ScramSHA256)
	if _, ok := wo.Get(ScramSHA256); ok {
		t.Fatal("Without left the credential")
	}
	if got, _ := wo.Get(ScramSHA512); !sameCred(got, c512) || wo.Empty() {
		t.Fatal("Without lost another mechanism's credential")
	}
	if _, ok := s.Get(ScramSHA256); !ok {
		t.Fatal("Without changed the set it was called on")
	}
	if !wo.Without(ScramSHA512).Empty() {
		t.Fatal("a set without every credential is not empty")
	}
}
