package rewrite

import (
	"errors"
	"fmt"
)

// Source feeds ScanFetch. Next returns the next n bytes (n ≤ 16), valid
// until the next call; Skip passes over n bytes. A Source that forwards
// what it has passed lets a response stream while it is checked: bytes
// are only ever handed on after ScanFetch has read past them.
type Source interface {
	Next(n int) ([]byte, error)
	Skip(n int) error
}

// ErrFetchEndpoints means a streamed Fetch response carried KIP-951 node
// endpoints at a version that does not define them. It is returned as soon
// as the tag is seen, before any of its bytes are read: the caller must
// close the connection rather than pass the rest on.
var ErrFetchEndpoints = errors.New("fetch response carries node endpoints below v16; closing rather than leak them")

// ScanFetch reads a whole Fetch response frame (after its size: header
// and body) of a flexible version (12 to 15) from src without holding it,
// and fails with ErrFetchEndpoints if the top-level node endpoints tag (0)
// appears. Record batches are skipped, so they stream; everything else is
// a few bytes a partition.
func ScanFetch(src Source, version int16) error {
	if version < 12 || version > 15 {
		return fmt.Errorf("scan fetch v%d: only v12 to v15 stream", version)
	}
	s := scanner{src: src}
	s.skip(4) // correlation id
	s.tags()  // response header tags
	s.skip(4 + 2 + 4)
	for range s.array() { // topics
		if version >= 13 {
			s.skip(16) // topic id
		} else {
			s.compactBytes() // topic name
		}
		for range s.array() { // partitions
			s.skip(4 + 2 + 8 + 8 + 8)
			for range s.array() { // aborted transactions
				s.skip(8 + 8)
				s.tags()
			}
			s.skip(4)        // preferred read replica
			s.compactBytes() // record batches
			s.tags()         // diverging epoch, current leader, snapshot id
		}
		s.tags()
	}
	n := s.uvarint()
	for i := uint64(0); i < n && s.err == nil; i++ {
		if tag := s.uvarint(); tag == 0 && s.err == nil {
			return ErrFetchEndpoints
		}
		s.skip(s.length())
	}
	return s.err
}

// scanner reads Kafka's flexible encoding from a Source, keeping the first
// error; after one, every read is a no-op returning zero.
type scanner struct {
	src Source
	err error
}

func (s *scanner) skip(n int) {
	if s.err == nil && n > 0 {
		s.err = s.src.Skip(n)
	}
}

func (s *scanner) uvarint() uint64 {
	var v uint64
	for shift := 0; s.err == nil; shift += 7 {
		if shift > 28 {
			s.err = errors.New("scan fetch: varint overflows 32 bits")
			return 0
		}
		b, err := s.src.Next(1)
		if err != nil {
			s.err = err
			return 0
		}
		v |= uint64(b[0]&0x7f) << shift
		if b[0] < 0x80 {
			return v
		}
	}
	return 0
}

// length reads a byte count as an unsigned varint.
func (s *scanner) length() int {
	return int(s.uvarint())
}

// array reads a compact (nullable) array length and yields that many
// iterations, stopping early on an error.
func (s *scanner) array() func(func(int) bool) {
	n := s.uvarint() // 0: null, else length + 1
	return func(yield func(int) bool) {
		for i := 0; uint64(i)+1 < n && s.err == nil; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// compactBytes skips a compact (nullable) string or bytes field.
func (s *scanner) compactBytes() {
	if n := s.length(); n > 0 {
		s.skip(n - 1)
	}
}

// tags skips a tagged-field section.
func (s *scanner) tags() {
	n := s.uvarint()
	for i := uint64(0); i < n && s.err == nil; i++ {
		s.uvarint() // tag
		s.skip(s.length())
	}
}
