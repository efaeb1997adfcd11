package proxy

import "testing"

func TestBufPoolClasses(t *testing.T) {
	var p bufPool
	for _, n := range []int{0, 1, 4096, 4097, 65536, 1 << 20, 64 << 20, 64<<20 + 1} {
		b := p.get(n)
		if len(*b) != n || cap(*b) < n {
			t.Fatalf("get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		p.put(b)
		again := p.get(n)
		if len(*again) != n {
			t.Fatalf("reused get(%d): len %d", n, len(*again))
		}
	}
}
