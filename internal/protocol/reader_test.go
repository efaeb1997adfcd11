package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// frames encodes bodies as a stream of size-prefixed frames.
func frames(bodies ...[]byte) []byte {
	var out []byte
	for _, b := range bodies {
		out = AppendSize(out, len(b))
		out = append(out, b...)
	}
	return out
}

func TestFrameReaderReadsEveryFrame(t *testing.T) {
	bodies := [][]byte{[]byte("abc"), {}, bytes.Repeat([]byte{7}, 5000), []byte("z")}
	for name, pool := range map[string]*BufferPool{"pooled": new(BufferPool), "unpooled": nil} {
		t.Run(name, func(t *testing.T) {
			// One byte per Read: every partial-read path is taken.
			fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(frames(bodies...))), 1<<20, pool)
			for i, want := range bodies {
				got, err := fr.Read()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("frame %d: %d bytes, %v", i, len(got), err)
				}
			}
			if _, err := fr.Read(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameReaderSizeErrorsAreTypedAndSticky(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		hint string
	}{
		{[]byte{0x16, 0x03, 0x01, 0x02, 0x00}, "TLS"},
		{[]byte("POST / HTTP/1.1\r\n"), "HTTP"},
		{[]byte{0, 0, 1, 0}, ""},             // 256 > the cap of 255
		{[]byte{0xff, 0xff, 0xff, 0xfe}, ""}, // negative
	} {
		fr := NewFrameReader(bytes.NewReader(tc.in), 255, nil)
		_, err := fr.Read()
		var fse *FrameSizeError
		if !errors.As(err, &fse) || fse.Max != 255 {
			t.Fatalf("%x: %v", tc.in, err)
		}
		if tc.hint == "" && fse.Hint != "" || !strings.Contains(fse.Hint, tc.hint) {
			t.Errorf("%x: hint %q, want %q", tc.in, fse.Hint, tc.hint)
		}
		if _, again := fr.Next(); again != err {
			t.Errorf("%x: second call %v, want the first error again", tc.in, again)
		}
		if fr.bufp != nil {
			t.Errorf("%x: a buffer was allocated for a refused size", tc.in)
		}
	}
	// The cap itself is allowed; SetMax moves it.
	fr := NewFrameReader(bytes.NewReader(frames(make([]byte, 255), make([]byte, 256))), 255, nil)
	if _, err := fr.Read(); err != nil {
		t.Fatal(err)
	}
	fr.SetMax(256)
	if _, err := fr.Read(); err != nil {
		t.Fatal(err)
	}
}

func TestFrameReaderTruncatedStream(t *testing.T) {
	for name, in := range map[string][]byte{
		"in the prefix": {0, 0},
		"in the body":   {0, 0, 0, 9, 'a', 'b'},
	} {
		fr := NewFrameReader(bytes.NewReader(in), 100, nil)
		if _, err := fr.Read(); err != io.ErrUnexpectedEOF {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A peer announcing a large frame and sending little must cost about what
// it sent, not what it announced.
func TestFrameReaderGrowsAsBytesArrive(t *testing.T) {
	const announced = 512 << 10
	for _, sent := range []int{0, 10, 1000, 100 << 10} {
		in := AppendSize(nil, announced)
		in = append(in, make([]byte, sent)...)
		for _, pool := range []*BufferPool{nil, new(BufferPool)} {
			fr := NewFrameReader(bytes.NewReader(in), 1<<20, pool)
			if _, err := fr.Read(); err != io.ErrUnexpectedEOF {
				t.Fatalf("sent %d: %v", sent, err)
			}
			if c := cap(*fr.bufp); c > max(firstBuffer, 2*(4+sent)) {
				t.Errorf("sent %d of %d: buffer of %d bytes", sent, announced, c)
			}
		}
	}
}

func TestFrameReaderPeekFramedRest(t *testing.T) {
	body := []byte("0123456789")
	fr := NewFrameReader(iotest.HalfReader(bytes.NewReader(frames(body, []byte("next"), []byte("last")))), 100, new(BufferPool))
	n, err := fr.Next()
	if err != nil || n != len(body) {
		t.Fatalf("next: %d %v", n, err)
	}
	head, err := fr.Peek(3)
	if err != nil || string(head) != "012" {
		t.Fatalf("peek: %q %v", head, err)
	}
	if got := fr.Framed(); !bytes.Equal(got, append(AppendSize(nil, 10), "012"...)) {
		t.Fatalf("framed: %x", got)
	}
	if more, _ := fr.Peek(50); string(more) != string(body) {
		t.Fatalf("peek past the frame: %q", more)
	}
	// A fresh frame: Peek part, stream the rest.
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := fr.Peek(1); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(fr.Rest())
	if err != nil || string(rest) != "ext" {
		t.Fatalf("rest: %q %v", rest, err)
	}
	if _, err := fr.Peek(1); err != ErrPeekAfterRest {
		t.Fatalf("peek after rest: %v", err)
	}
	// Next skips what is left of a frame nobody read.
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if b, err := fr.Read(); err != io.EOF {
		t.Fatalf("after skipping the last frame: %q %v", b, err)
	}
}

// With a pool, a reader waiting for the next size prefix holds no buffer.
func TestFrameReaderIdleHoldsNoBuffer(t *testing.T) {
	pr, pw := io.Pipe()
	fr := NewFrameReader(pr, 100, new(BufferPool))
	go func() { _, _ = pw.Write(frames([]byte("one"))) }()
	if b, err := fr.Read(); err != nil || string(b) != "one" {
		t.Fatalf("%q %v", b, err)
	}
	done := make(chan error)
	go func() { _, err := fr.Next(); done <- err }()
	_ = pw.CloseWithError(errors.New("gone")) // Next is blocked or about to be
	if err := <-done; err == nil || err.Error() != "gone" {
		t.Fatalf("next: %v", err)
	}
	if fr.bufp != nil {
		t.Fatal("a pooled reader kept its buffer across Next")
	}
}

func TestBufferPoolClasses(t *testing.T) {
	var p BufferPool
	for _, tc := range []struct{ n, cap int }{{0, 512}, {512, 512}, {513, 1024}, {70000, 128 << 10}} {
		b := p.Get(tc.n)
		if len(*b) != tc.n || cap(*b) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want cap %d", tc.n, len(*b), cap(*b), tc.cap)
		}
		p.Put(b)
	}
	huge := p.Get(64<<20 + 1)
	if len(*huge) != 64<<20+1 {
		t.Fatalf("huge: %d", len(*huge))
	}
	p.Put(huge) // dropped, not pooled: must not panic
	var nilPool *BufferPool
	if b := nilPool.Get(600); len(*b) != 600 || cap(*b) != 1024 {
		t.Fatalf("nil pool: len %d cap %d", len(*b), cap(*b))
	}
	nilPool.Put(nilPool.Get(1))
}
