package sasl

import "testing"

// TestMechanismIndex: Index numbers Mechanisms() in order, within
// NumMechanisms, and refuses anything else.
func TestMechanismIndex(t *testing.T) {
	ms := Mechanisms()
	if len(ms) != NumMechanisms {
		t.Fatalf("%d mechanisms, NumMechanisms %d", len(ms), NumMechanisms)
	}
	for want, m := range ms {
		if got, ok := m.Index(); !ok || got != want {
			t.Errorf("%s: Index %d, %v; want %d", m, got, ok, want)
		}
	}
	for _, m := range []Mechanism{"", "PLAIN", "scram-sha-256", "SCRAM-SHA-1"} {
		if _, ok := m.Index(); ok {
			t.Errorf("%q has an index", m)
		}
	}
}
