package proxy

import (
	"encoding/binary"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
)

// A flexible request whose tagged-field section claims 2^32-1 fields in a
// six-byte body must fail at once. kmsg before v1.15.1 looped over the
// claimed count past the end of the input: one such SaslAuthenticate,
// sent before authentication, held a core for minutes. ExpectClosed bounds
// the wait (5 s); the decode itself takes microseconds.
func TestHugeTagCountBeforeAuthClosesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	w := e.dial()
	w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))

	frame := []byte{0, 0, 0, 0} // size, filled below
	frame = binary.BigEndian.AppendUint16(frame, uint16(protocol.KeySASLAuthenticate))
	frame = binary.BigEndian.AppendUint16(frame, 2) // v2: flexible, request header v2
	frame = binary.BigEndian.AppendUint32(frame, 7) // correlation id
	frame = append(frame, 0xff, 0xff)               // client id: null
	frame = append(frame, 0)                        // header tags: none
	frame = append(frame, 1)                        // auth bytes: compact, empty
	frame = append(frame, 0xff, 0xff, 0xff, 0xff, 0x0f)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	w.SendRaw(frame)
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("wrote %d bytes before closing", len(b))
	}
}
