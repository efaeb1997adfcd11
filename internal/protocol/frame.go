package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameSizeError reports a size prefix outside [0, Max]. Hint, when set,
// names what the peer is probably speaking instead of Kafka (franz-go's
// diagnostics idea): a TLS record or HTTP on a plaintext Kafka port.
type FrameSizeError struct {
	Size int64
	Max  int
	Hint string
}

func (e *FrameSizeError) Error() string {
	msg := fmt.Sprintf("frame size %d outside [0, %d]", e.Size, e.Max)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// ErrTruncated reports a frame or field that ends before its declared length.
var ErrTruncated = errors.New("truncated kafka message")

// checkSize validates a size prefix against max, before anything is
// allocated. On a bad size it returns a *FrameSizeError carrying a hint
// derived from the four bytes.
func checkSize(hdr [4]byte, max int) (int, error) {
	n := int32(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 || int64(n) > int64(max) {
		return 0, &FrameSizeError{Size: int64(n), Max: max, Hint: SniffNonKafka(hdr[:])}
	}
	return int(n), nil
}

// SniffNonKafka guesses what a peer speaks from the first bytes of its
// stream when those bytes make no sense as a Kafka size prefix.
func SniffNonKafka(b []byte) string {
	if len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04 {
		return "peer is speaking TLS to a plaintext listener"
	}
	if len(b) >= 4 {
		switch string(b[:4]) {
		case "GET ", "POST", "PUT ", "HEAD", "HTTP", "PRI ":
			return "peer is speaking HTTP, not Kafka"
		}
	}
	return ""
}

// LooksLikeKafkaRequest reports whether b, the first bytes a client sent to
// a TLS port, plausibly start a plaintext Kafka request: a sane size prefix
// followed by an API key (whose high byte is 0 for every key; with a sixth
// byte the key must be one kmsg knows). crypto/tls reports exactly five
// bytes (tls.RecordHeaderError). Used only to word a log line.
func LooksLikeKafkaRequest(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	n := int32(binary.BigEndian.Uint32(b))
	if n < 8 || n >= 1<<30 || b[4] != 0 {
		return false
	}
	return len(b) < 6 || KnownKey(int16(binary.BigEndian.Uint16(b[4:])))
}

// AppendSize appends a 4-byte big-endian size prefix.
func AppendSize(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// WriteFrame writes body with its size prefix in one Write call. It copies
// into scratch (grown as needed) and returns it for reuse; callers own both.
func WriteFrame(w io.Writer, scratch, body []byte) ([]byte, error) {
	scratch = AppendSize(scratch[:0], len(body))
	scratch = append(scratch, body...)
	_, err := w.Write(scratch)
	return scratch, err
}
