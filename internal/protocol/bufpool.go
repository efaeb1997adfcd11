package protocol

import (
	"math/bits"
	"sync"
)

// BufferPool recycles byte slices by power-of-two size class, from 512 B to
// 64 MiB; larger requests are allocated and dropped on Put. The zero value is
// ready to use and it is safe for concurrent use. A nil *BufferPool is valid
// too: Get allocates (at the class size) and Put does nothing.
//
// Slices travel as *[]byte so that Put does not allocate.
type BufferPool struct {
	classes [poolClasses]sync.Pool
}

const (
	poolMinShift = 9  // smallest class: 512 B
	poolClasses  = 18 // largest class: 512 B << 17 = 64 MiB
)

// poolClass returns the class whose size is the smallest power of two >= n.
func poolClass(n int) int {
	if n <= 1<<poolMinShift {
		return 0
	}
	return bits.Len(uint(n-1)) - poolMinShift
}

// Get returns a slice of length n whose capacity is its size class. Give it
// back with Put when nothing refers to it any more.
func (p *BufferPool) Get(n int) *[]byte {
	c := poolClass(n)
	if c >= poolClasses {
		b := make([]byte, n)
		return &b
	}
	if p == nil {
		b := make([]byte, n, 1<<(c+poolMinShift))
		return &b
	}
	if v := p.classes[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+poolMinShift))
	return &b
}

// Put returns b to the pool. Slices whose capacity is not exactly a class
// size (not from Get, or too large) are left to the garbage collector.
func (p *BufferPool) Put(b *[]byte) {
	if p == nil || b == nil {
		return
	}
	c := poolClass(cap(*b))
	if c < poolClasses && cap(*b) == 1<<(c+poolMinShift) {
		p.classes[c].Put(b)
	}
}
