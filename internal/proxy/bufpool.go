package proxy

import (
	"math/bits"
	"sync"
)

// bufPool recycles frame buffers by power-of-two size class, for responses
// that must be held whole while they are decoded (endpoint rewrites, Fetch
// included). Frames beyond the largest class are allocated and dropped.
// Safe for concurrent use.
type bufPool struct {
	classes [bufClasses]sync.Pool
}

const (
	bufMinShift = 12 // 4 KiB
	bufClasses  = 15 // up to 64 MiB
)

func classOf(n int) int {
	if n <= 1<<bufMinShift {
		return 0
	}
	return bits.Len(uint(n-1)) - bufMinShift
}

// get returns a buffer of length n; put it back when done.
func (p *bufPool) get(n int) *[]byte {
	c := classOf(n)
	if c >= bufClasses {
		b := make([]byte, n)
		return &b
	}
	if v := p.classes[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+bufMinShift))
	return &b
}

func (p *bufPool) put(b *[]byte) {
	c := classOf(cap(*b))
	if c < bufClasses && cap(*b) == 1<<(c+bufMinShift) {
		p.classes[c].Put(b)
	}
}
