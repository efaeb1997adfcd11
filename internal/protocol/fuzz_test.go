package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzFrameAndHeader feeds arbitrary bytes to the frame and header decoders:
// they must never panic, never accept a size over the cap, and a header they
// accept must lie within the frame.
func FuzzFrameAndHeader(f *testing.F) {
	var rf kmsg.RequestFormatter
	f.Add(rf.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1))
	f.Add(rf.AppendRequest(nil, kmsg.NewPtrSASLHandshakeRequest(), 2))
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SetVersion(2)
	f.Add(rf.AppendRequest(nil, auth, 3))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := NewFrameReader(bytes.NewReader(b), 1<<16, nil).Next()
		if err == nil && (n < 0 || n > 1<<16) {
			t.Fatalf("accepted size %d", n)
		}
		if len(b) < 4 {
			return
		}
		frame := b[4:]
		h, err := ParseRequestHeader(frame)
		if err != nil {
			return
		}
		if h.Len < 10 || h.Len > len(frame) || !KnownKey(h.Key) {
			t.Fatalf("header %+v outside frame of %d", h, len(frame))
		}
		if h.Key == KeyProduce {
			ProduceAcks(h.Version, frame[h.Len:])
		}
		_, _ = ResponseHeaderLen(frame, h.Key, h.Version)
	})
}

// pieces returns at most n bytes per Read, like a socket under load.
type pieces struct {
	b []byte
	n int
}

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	k := copy(b[:min(len(b), p.n)], p.b)
	p.b = p.b[k:]
	return k, nil
}

// FuzzFrameReader reads an arbitrary stream with FrameReader, arriving in
// pieces of a fuzzed size, with a fuzzed mix of Read, Peek plus Rest, and
// skipping per frame. Every frame must match a plain decoding of the same
// bytes, the end of the stream must give the matching error, and a pooled
// reader's buffer must stay within twice what has arrived of the frame.
func FuzzFrameReader(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{})
	f.Add(uint8(2), uint16(0x1b), frames([]byte("abc"), nil, []byte("hello"), bytes.Repeat([]byte{1}, 700)))
	f.Add(uint8(15), uint16(0xffff), frames(bytes.Repeat([]byte{2}, 4096), []byte("x")))
	f.Add(uint8(1), uint16(0x2), append(frames([]byte("ok")), 0, 0, 0x10, 0, 'p'))
	f.Add(uint8(4), uint16(0), []byte{0x16, 0x03, 0x01, 0x00, 0xa5})
	f.Add(uint8(4), uint16(1), []byte("GET / HTTP/1.1\r\n"))
	f.Add(uint8(0), uint16(0), []byte{0, 0})
	f.Fuzz(func(t *testing.T, piece uint8, mode uint16, stream []byte) {
		const limit = 1 << 12
		var pool *BufferPool
		if mode&0x8000 != 0 {
			pool = new(BufferPool)
		}
		fr := NewFrameReader(&pieces{b: stream, n: int(piece%32) + 1}, limit, pool)
		checkBuffer := func() {
			if pool != nil && fr.bufp != nil && cap(*fr.bufp) > max(firstBuffer, 2*(4+fr.have)) {
				t.Fatalf("buffer of %d bytes for %d arrived", cap(*fr.bufp), fr.have)
			}
		}
		off := 0
		for i := 0; ; i++ {
			rest := stream[off:]
			var size int
			complete := len(rest) >= 4
			if complete {
				size = int(int32(binary.BigEndian.Uint32(rest)))
				complete = size >= 0 && size <= limit && len(rest)-4 >= size
			}
			if !complete {
				_, err := fr.Read()
				checkBuffer()
				var fse *FrameSizeError
				switch {
				case len(rest) == 0:
					if err != io.EOF {
						t.Fatalf("clean end: %v", err)
					}
				case len(rest) >= 4 && (size < 0 || size > limit):
					if !errors.As(err, &fse) || fse.Size != int64(size) {
						t.Fatalf("bad size %d: %v", size, err)
					}
				default:
					if err != io.ErrUnexpectedEOF {
						t.Fatalf("truncated: %v", err)
					}
				}
				return
			}
			want := rest[4 : 4+size]
			off += 4 + size
			switch (mode >> (2 * (i % 7))) & 3 {
			case 0, 3:
				got, err := fr.Read()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("frame %d: %v", i, err)
				}
			case 1:
				if n, err := fr.Next(); err != nil || n != size {
					t.Fatalf("frame %d: next %d %v", i, n, err)
				}
				head, err := fr.Peek(size / 2)
				if err != nil || !bytes.Equal(head, want[:size/2]) {
					t.Fatalf("frame %d: peek %v", i, err)
				}
				checkBuffer()
				if fb := fr.Framed(); !bytes.Equal(fb, rest[:4+size/2]) {
					t.Fatalf("frame %d: framed %x", i, fb)
				}
				tail, err := io.ReadAll(fr.Rest())
				if err != nil || !bytes.Equal(tail, want[size/2:]) {
					t.Fatalf("frame %d: rest %v", i, err)
				}
			case 2:
				if n, err := fr.Next(); err != nil || n != size {
					t.Fatalf("frame %d: next %d %v", i, n, err)
				}
				// left unread: the next Next skips it
			}
			checkBuffer()
		}
	})
}

// FuzzNamesTopics feeds arbitrary request frames to NamesTopics: it must
// never panic, and it says "named" only for a Metadata or
// DescribeTopicPartitions request whose header parses.
func FuzzNamesTopics(f *testing.F) {
	var rf kmsg.RequestFormatter
	for _, v := range []int16{0, 4, 9, 12} {
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(v)
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("orders")
		md.Topics = append(md.Topics, rt)
		f.Add(rf.AppendRequest(nil, md, 1)[4:])
	}
	f.Add(rf.AppendRequest(nil, kmsg.NewPtrDescribeTopicPartitionsRequest(), 2)[4:])
	f.Fuzz(func(t *testing.T, frame []byte) {
		if !NamesTopics(frame) {
			return
		}
		h, err := ParseRequestHeader(frame)
		if err != nil || (h.Key != KeyMetadata && h.Key != KeyDescribeTopicPartitions) {
			t.Fatalf("named for %+v, %v", h, err)
		}
	})
}
