package protocol

import (
	"bytes"
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
		n, err := ReadSize(bytes.NewReader(b), new([4]byte), 1<<16)
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
