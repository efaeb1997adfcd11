package sasl

import (
	"math/big"
	"strings"
	"testing"
)

func TestShapeOfRecognisesKafkaSalts(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 130), big.NewInt(1)).Text(36) // 2^130-1
	for _, tc := range []struct {
		salt string
		want SaltForm
	}{
		{"5l1y8f2vt8j3mqfr6a4k2hgc0", SaltBase36}, // the token vector's salt (vectors_test.go)
		{max, SaltBase36},
		{"2" + strings.Repeat("0", 25), SaltBytes}, // 26 digits above 2^130
		{"05l1y8f2vt8j3mqfr6a4k2hgc", SaltBytes},   // leading zero
		{"5L1Y8F2VT8J3MQFR6A4K2HGC0", SaltBytes},   // upper case
		{strings.Repeat("a", 27), SaltBytes},
		{"0123456789abcdef01234567", SaltBytes},
	} {
		if got := ShapeOf(Credential{Salt: []byte(tc.salt), Iterations: 4096}).Form; got != tc.want {
			t.Errorf("%q: form %d, want %d", tc.salt, got, tc.want)
		}
	}
	if len(max) != 26 || max[0] != '1' {
		t.Fatalf("2^130-1 in base 36 is %q", max)
	}
}

// TestPhantomSaltsAreMadeLikeRealOnes: a base-36 phantom salt passes the
// same recognition as Kafka's, and a bytes phantom has the exact length.
func TestPhantomSaltsAreMadeLikeRealOnes(t *testing.T) {
	for _, shape := range []Shape{{Iterations: 4096, Form: SaltBase36}, {Iterations: 8192, Form: SaltBytes, SaltLen: 24},
		{Iterations: 4096, Form: SaltBytes, SaltLen: 100}} {
		pop := []ShapeCount{{Shape: shape, Count: 1}}
		for _, name := range []string{"a", "b", "c", "d"} {
			c := phantomCredential([]byte("k"), ScramSHA512, name, pop)
			if got := ShapeOf(c); got != shape {
				t.Errorf("%s: phantom shape %v, want %v", name, got, shape)
			}
		}
	}
	if got := phantomCredential([]byte("k"), ScramSHA256, "x", nil); ShapeOf(got) != DefaultPhantomShape() {
		t.Errorf("no population: %v", ShapeOf(got))
	}
}
