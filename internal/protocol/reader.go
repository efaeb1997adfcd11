package protocol

import (
	"errors"
	"io"
)

// FrameReader reads size-prefixed Kafka frames (a 4-byte big-endian length,
// then that many bytes) from one stream. It is the only place scram-proxy
// reads a frame: the gate, the relay, the upstream probes and the test
// clients all use it.
//
// Safety against a hostile peer:
//   - the size prefix is checked against the cap before anything is
//     allocated; a bad one fails with a *FrameSizeError whose Hint says when
//     the peer is speaking TLS or HTTP instead of Kafka;
//   - the body buffer grows as bytes arrive (doubling, never past the
//     announced size), so a peer that announces a large frame and sends
//     nothing costs one small buffer, not the announced size;
//   - buffers come from a BufferPool when one is given and go back to it
//     before the reader blocks on the next size prefix, so an idle reader
//     holds no buffer.
//
// Buffer ownership: a slice returned by Read, Peek or Framed belongs to the
// reader and is valid until the next call to Read, Next, Peek or Release.
// Copy what must outlive that.
//
// Errors are sticky: once a read fails (including a bad size prefix) the
// position in the stream is lost, and every later call returns the same
// error. io.EOF from Read or Next means the stream ended cleanly between
// frames; a stream that ends inside a frame gives io.ErrUnexpectedEOF.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	r    io.Reader
	max  int
	pool *BufferPool

	hdr      [4]byte
	bufp     *[]byte // (*bufp)[:4] holds the size prefix, then the buffered body
	n        int     // body length of the current frame
	have     int     // body bytes buffered
	left     int     // body bytes not yet taken from the stream
	streamed bool    // Rest was called for the current frame
	err      error
}

const (
	// firstBuffer is the buffer size a frame starts with (prefix included).
	firstBuffer = 512
	// retainUnpooled is the largest buffer a reader without a pool keeps
	// between frames.
	retainUnpooled = 64 << 10
)

// ErrPeekAfterRest reports a Peek after Rest handed out part of the frame.
var ErrPeekAfterRest = errors.New("protocol: Peek after Rest on the same frame")

// NewFrameReader reads frames from r whose bodies are at most max bytes.
// pool may be nil (buffers are then allocated, and reused between frames up
// to 64 KiB).
func NewFrameReader(r io.Reader, max int, pool *BufferPool) *FrameReader {
	return &FrameReader{r: r, max: max, pool: pool}
}

// SetMax changes the cap for the frames read from now on (for example from
// sasl.max_receive_size before authentication to the request cap after it).
func (f *FrameReader) SetMax(max int) { f.max = max }

// Read reads the next frame whole and returns its body (the bytes after the
// size prefix). See the type's comment for how long the slice is valid.
func (f *FrameReader) Read() ([]byte, error) {
	n, err := f.Next()
	if err != nil {
		return nil, err
	}
	return f.Peek(n)
}

// Next skips whatever is left of the current frame, reads and checks the
// next size prefix and returns the body length. The body is then read with
// Peek and Rest.
func (f *FrameReader) Next() (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.left > 0 {
		if _, err := io.CopyN(io.Discard, f.r, int64(f.left)); err != nil {
			return 0, f.fail(midFrame(err))
		}
	}
	f.n, f.have, f.left, f.streamed = 0, 0, 0, false
	if f.pool != nil || (f.bufp != nil && cap(*f.bufp) > retainUnpooled) {
		f.Release()
	}
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return 0, f.fail(err)
	}
	n, err := checkSize(f.hdr, f.max)
	if err != nil {
		return 0, f.fail(err)
	}
	f.n, f.left = n, n
	return n, nil
}

// Peek returns the first min(k, size) body bytes of the current frame,
// reading from the stream what is not buffered yet. It never reads past
// them: Rest continues right after the largest Peek.
func (f *FrameReader) Peek(k int) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.streamed {
		return nil, ErrPeekAfterRest
	}
	k = min(max(k, 0), f.n)
	b := f.buffer()
	for f.have < k {
		if 4+f.have == len(b) {
			b = f.grow(min(4+f.n, max(2*len(b), firstBuffer)))
		}
		got, err := f.r.Read(b[4+f.have : min(len(b), 4+k)])
		f.have += got
		f.left -= got
		if err != nil && (f.have < k || err != io.EOF) {
			return nil, f.fail(midFrame(err))
		}
	}
	return b[4 : 4+k], nil
}

// Framed returns the size prefix followed by the body bytes buffered so far
// (all of them after Read), ready to forward as they came.
func (f *FrameReader) Framed() []byte {
	return f.buffer()[:4+f.have]
}

// Rest returns a reader of the current frame's body after the bytes Peek
// buffered, straight from the stream; it returns io.EOF at the end of the
// frame. Peek is not allowed on the frame afterwards.
func (f *FrameReader) Rest() io.Reader {
	f.streamed = true
	return frameRest{f}
}

// Release gives the buffer back to the pool; slices handed out before are
// invalid. The reader stays usable. Call it when the stream is done.
func (f *FrameReader) Release() {
	f.pool.Put(f.bufp)
	f.bufp = nil
}

// buffer returns the frame buffer, at its full capacity, allocating the
// first one and writing the current size prefix into it.
func (f *FrameReader) buffer() []byte {
	if f.bufp == nil {
		f.bufp = f.pool.Get(min(4+f.n, firstBuffer))
	}
	b := (*f.bufp)[:cap(*f.bufp)]
	copy(b, f.hdr[:])
	return b
}

// grow moves the buffered bytes into a buffer of at least n bytes.
func (f *FrameReader) grow(n int) []byte {
	nb := f.pool.Get(n)
	b := (*nb)[:cap(*nb)]
	copy(b, (*f.bufp)[:4+f.have])
	f.pool.Put(f.bufp)
	f.bufp = nb
	return b
}

func (f *FrameReader) fail(err error) error {
	f.err = err
	return err
}

// midFrame turns an end of stream inside a frame into io.ErrUnexpectedEOF.
func midFrame(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type frameRest struct{ f *FrameReader }

func (r frameRest) Read(p []byte) (int, error) {
	f := r.f
	if f.err != nil {
		return 0, f.err
	}
	if f.left == 0 {
		return 0, io.EOF
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	switch {
	case err == nil:
	case err == io.EOF && f.left == 0:
		err = nil // the frame is complete; the next read says EOF
	default:
		err = f.fail(midFrame(err))
	}
	return n, err
}
