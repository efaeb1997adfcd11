package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

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

// FuzzPreAuthStream sends arbitrary bytes to a real proxy session before
// authentication (optionally after a valid SaslHandshake, or after the
// client-first message of a SCRAM exchange), then ends its side of the
// connection. Whatever the bytes, the proxy must not panic (a panic ends
// the fuzzing process), must close the connection once the client has
// nothing more to say, and must write only whole response frames.
func FuzzPreAuthStream(f *testing.F) {
	e := newEnv(f, func(o *Options) { o.FailedAuthDelay = 0 })
	var rf kmsg.RequestFormatter
	req := func(r kmsg.Request, v int16, corr int32) []byte {
		r.SetVersion(v)
		return rf.AppendRequest(nil, r, corr)
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	f.Add(uint8(0), req(av, 3, 1))
	f.Add(uint8(0), append(req(av, 0, 1), req(protocoltest.Handshake(1, "SCRAM-SHA-512"), 1, 2)...))
	f.Add(uint8(0), req(protocoltest.Handshake(1, "PLAIN"), 1, 1))
	f.Add(uint8(0), req(kmsg.NewPtrMetadataRequest(), 9, 1))
	f.Add(uint8(0), req(protocoltest.Authenticate(2, []byte("n,,n=alice,r=abc")), 2, 1))
	f.Add(uint8(1), req(protocoltest.Authenticate(2, []byte("n,,n=alice,r=abc")), 2, 5))
	f.Add(uint8(1), req(protocoltest.Authenticate(0, []byte("n,,n=al=2Cice,r=")), 0, 5))
	f.Add(uint8(2), req(protocoltest.Authenticate(1, []byte("c=biws,r=x,p=AAAA")), 1, 6))
	f.Add(uint8(3), []byte("n,,n=alice,r=abc"))                                         // v0 handshake: raw SASL tokens
	f.Add(uint8(0), []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03}) // TLS ClientHello
	f.Add(uint8(0), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(uint8(0), []byte{0x7f, 0xff, 0xff, 0xff, 0, 18})
	hugeTags := []byte{0, 0, 0, 0, 0, byte(protocol.KeySASLAuthenticate), 0, 2, 0, 0, 0, 7, 0xff, 0xff, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}
	binary.BigEndian.PutUint32(hugeTags, uint32(len(hugeTags)-4))
	f.Add(uint8(1), hugeTags)

	f.Fuzz(func(t *testing.T, prelude uint8, stream []byte) {
		w := protocoltest.Dial(t, e.addr, nil)
		switch prelude % 4 {
		case 1, 2:
			w.RoundTrip(protocoltest.Handshake(1, "SCRAM-SHA-512"))
			if prelude%4 == 2 {
				w.RoundTrip(protocoltest.Authenticate(1, []byte("n,,n="+testUser+",r=fuzzclientnonce")))
			}
		case 3:
			w.RoundTrip(protocoltest.Handshake(0, "SCRAM-SHA-512"))
		}
		conn := w.Conn().(*net.TCPConn)
		type result struct {
			out []byte
			err error
		}
		read := make(chan result, 1)
		go func() {
			// Ends at the proxy's close (nil error) or reset, or at the
			// Wire's deadline.
			b, err := io.ReadAll(conn)
			read <- result{b, err}
		}()
		_, _ = conn.Write(stream) // the proxy may close before reading it all
		_ = conn.CloseWrite()
		r := <-read
		if r.err != nil && !errors.Is(r.err, syscall.ECONNRESET) {
			t.Fatalf("connection not closed after the client ended its side: %v", r.err)
		}
		out := r.out
		for len(out) > 0 {
			if len(out) < 8 {
				t.Fatalf("partial response frame % x", out)
			}
			n := int(binary.BigEndian.Uint32(out))
			if n < 4 || n > len(out)-4 {
				t.Fatalf("response frame of %d bytes with %d left", n, len(out)-4)
			}
			out = out[4+n:]
		}
	})
}
