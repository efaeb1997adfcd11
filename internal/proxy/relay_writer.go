package proxy

// The relay's writer half: it answers the queue of pending entries in
// order. It owns the client connection's write side and the upstream's
// read side; of the session it reads only what is fixed before it starts
// and the upstream connection, which the queue hands over (docs/DESIGN.md,
// "Ownership and locking"). What a response needs travels in its entry.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// writeLoop answers the queue in order: local frames as they are, upstream
// responses streamed (or decoded and rewritten when they carry endpoints).
// It returns "" once the queue is closed and drained.
func (s *session) writeLoop(queue <-chan pending) closeReason {
	o := &s.srv.opts
	var fr *protocol.FrameReader // the upstream's responses, from the first one on
	for p := range queue {
		up := s.up // set by the reader before it queued any upstream entry
		if p.reauth != nil {
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			err := up.(upstreamSession).Reauthenticate(ctx)
			cancel()
			p.reauth <- err
			if err != nil {
				return s.writerFailed(s.upstreamFailed("reauthenticate", err))
			}
			continue
		}
		if !p.fromUpstream() {
			if p.delay {
				o.sleep(s.ctx, o.FailedAuthDelay)
			}
			if p.local != nil {
				if err := s.deliver(p.local); err != nil {
					return s.writerFailed(s.clientWriteReason(err))
				}
			}
			if p.closeAfter != "" {
				return s.writerFailed(p.closeAfter)
			}
			continue
		}
		if fr == nil {
			fr = protocol.NewFrameReader(up, maxResponseSize, nil)
		}
		_ = up.SetReadDeadline(o.Now().Add(o.IdleTimeout))
		n, err := fr.Next()
		if err == nil && n < 4 {
			err = protocol.ErrTruncated
		}
		if err != nil {
			return s.writerFailed(s.upstreamFailed("read", err))
		}
		// The bodies are read through fr.Rest into the relay's own
		// buffers, sized for each path.
		switch body := fr.Rest(); {
		case p.scan != nil && n > chunkSize: // too large to hold: stream it through the check
			err = s.relayScanned(body, n, p)
		case p.rewrite:
			err = s.relayRewritten(body, n, p)
		default:
			err = s.relayStreamed(body, n, p)
		}
		if err != nil {
			return s.writerFailed(s.responseFailed(err))
		}
		o.Metrics.RequestDone(p.key, o.Now().Sub(p.start))
	}
	return ""
}

// deliver writes b to the client from the writer goroutine, under a write
// deadline of the idle timeout: a client that reads nothing for that long is
// gone.
func (s *session) deliver(b []byte) error {
	o := &s.srv.opts
	_ = s.conn.SetWriteDeadline(o.Now().Add(o.IdleTimeout))
	return s.write(b)
}

// writerFailed stops the reader too (it may be blocked on the client) and
// returns reason.
func (s *session) writerFailed(reason closeReason) closeReason {
	_ = s.raw.SetReadDeadline(time.Unix(1, 0))
	return reason
}

// errCorrelation: the upstream answered out of order, which Kafka never does.
type errCorrelation struct{ want, got int32 }

func (e errCorrelation) Error() string {
	return "upstream response correlation id mismatch"
}

// relayStreamed passes a response through in chunks.
func (s *session) relayStreamed(body io.Reader, n int, p pending) error {
	bufp := s.srv.buffers.Get(chunkSize)
	defer s.srv.buffers.Put(bufp)
	buf := *bufp
	binary.BigEndian.PutUint32(buf, uint32(n))
	head := min(n, len(buf)-4)
	if _, err := io.ReadFull(body, buf[4:4+head]); err != nil {
		return &PeerError{Side: SideUpstream, Op: "read", Err: err}
	}
	if corr := int32(binary.BigEndian.Uint32(buf[4:])); corr != p.corr {
		return errCorrelation{p.corr, corr}
	}
	if err := s.deliver(buf[:4+head]); err != nil {
		return err
	}
	for rest := n - head; rest > 0; {
		k := min(rest, len(buf))
		if _, err := io.ReadFull(body, buf[:k]); err != nil {
			return &PeerError{Side: SideUpstream, Op: "read", Err: err}
		}
		if err := s.deliver(buf[:k]); err != nil {
			return err
		}
		rest -= k
	}
	return nil
}

// relayScanned streams a response through p.scan, which reads it as it
// passes: bytes reach the client only once the scan has read past them, so
// a failed check (an endpoint where none may be) closes the connection
// before the offending bytes are sent.
func (s *session) relayScanned(body io.Reader, n int, p pending) error {
	bufp := s.srv.buffers.Get(chunkSize)
	defer s.srv.buffers.Put(bufp)
	src := &scanSource{s: s, body: body, buf: *bufp, left: n}
	binary.BigEndian.PutUint32(src.buf, uint32(n))
	src.w, src.r = 4, 4
	if err := src.fill(4); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(src.buf[src.r:])); corr != p.corr {
		return errCorrelation{p.corr, corr}
	}
	if err := p.scan(src, p.version); err != nil {
		return err
	}
	if src.left != 0 || src.r != src.w {
		return fmt.Errorf("%s v%d response has %d bytes after its end", kmsg.NameForKey(p.key), p.version, src.left+src.w-src.r)
	}
	return src.flush()
}

// scanSource is a rewrite.Source over one upstream response frame: the scan
// reads buf[r:w]; buf[:r], already read, goes to the client when the buffer
// needs room or the frame is done.
type scanSource struct {
	s    *session
	body io.Reader // the frame's bytes still upstream
	buf  []byte
	r, w int
	left int // frame bytes still upstream
}

func (f *scanSource) Next(n int) ([]byte, error) {
	if err := f.fill(n); err != nil {
		return nil, err
	}
	f.r += n
	return f.buf[f.r-n : f.r], nil
}

func (f *scanSource) Skip(n int) error {
	for n > 0 {
		if err := f.fill(1); err != nil {
			return err
		}
		k := min(n, f.w-f.r)
		f.r += k
		n -= k
	}
	return nil
}

// fill buffers at least n unread bytes.
func (f *scanSource) fill(n int) error {
	for f.w-f.r < n {
		if len(f.buf)-f.w < max(n, 4<<10) { // little room: forward what the scan passed
			if err := f.flush(); err != nil {
				return err
			}
		}
		if f.left == 0 {
			return &PeerError{Side: SideUpstream, Op: "read", Err: protocol.ErrTruncated}
		}
		got, err := f.body.Read(f.buf[f.w : f.w+min(f.left, len(f.buf)-f.w)])
		f.w += got
		f.left -= got
		if err != nil {
			return &PeerError{Side: SideUpstream, Op: "read", Err: err}
		}
	}
	return nil
}

// flush sends what the scan has read and keeps the rest.
func (f *scanSource) flush() error {
	if f.r == 0 {
		return nil
	}
	if err := f.s.deliver(f.buf[:f.r]); err != nil {
		return err
	}
	f.w = copy(f.buf, f.buf[f.r:f.w])
	f.r = 0
	return nil
}

// relayRewritten holds a response whole, decodes it and rewrites its broker
// endpoints. Responses that carry none (most Produce and Fetch answers) go
// out as they came, without re-encoding.
func (s *session) relayRewritten(body io.Reader, n int, p pending) error {
	bufp := s.srv.buffers.Get(4 + n)
	defer s.srv.buffers.Put(bufp)
	buf := *bufp
	binary.BigEndian.PutUint32(buf, uint32(n))
	frame := buf[4:]
	if _, err := io.ReadFull(body, frame); err != nil {
		return &PeerError{Side: SideUpstream, Op: "read", Err: err}
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != p.corr {
		return errCorrelation{p.corr, corr}
	}
	hlen, err := protocol.ResponseHeaderLen(frame, p.key, p.version)
	if err != nil {
		return err
	}
	if p.key == protocol.KeyApiVersions {
		out := append(make([]byte, 4, n+64), frame[:hlen]...)
		if out, err = s.clampApiVersions(out, p.version, frame[hlen:]); err != nil {
			return err
		}
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		return s.deliver(out)
	}
	outp := s.srv.buffers.Get(n + 4 + 256)
	defer s.srv.buffers.Put(outp)
	out := append((*outp)[:4], frame[:hlen]...)
	out, changed, err := s.srv.opts.Registry.ResponseTo(out, p.key, p.version, frame[hlen:], s.srv.opts.AddrMap, p.req)
	if err != nil {
		return err
	}
	if !changed {
		return s.deliver(buf[:4+n])
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return s.deliver(out)
}

// clampApiVersions rewrites the upstream's ApiVersions answer to what the
// proxy advertises.
func (s *session) clampApiVersions(dst []byte, version int16, body []byte) ([]byte, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	// An UNSUPPORTED_VERSION answer always has a v0 body (KIP-511).
	if len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == kerr.UnsupportedVersion.Code {
		version = 0
	}
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		return dst, err
	}
	resp.ApiKeys = s.srv.opts.Registry.ClampKeys(resp.ApiKeys, s.srv.versions.own)
	return resp.AppendTo(dst), nil
}

func (s *session) clientWriteReason(err error) closeReason {
	if isClosedConnErr(err) {
		return reasonClientClosed
	}
	if isTimeout(err) {
		s.log.Info("client write timed out")
		return reasonIdle
	}
	s.log.Info("client write failed", zap.Error(err))
	return reasonIOError
}

func (s *session) upstreamFailed(op string, err error) closeReason {
	if isClosedConnErr(err) {
		s.log.Info("upstream closed the connection", zap.String("op", op))
		return reasonUpstreamClosed
	}
	if isTimeout(err) {
		s.log.Debug("upstream i/o aborted or timed out", zap.String("op", op))
		return reasonUpstreamClosed
	}
	s.log.Warn("upstream i/o failed", zap.String("op", op), zap.Error(err))
	return reasonUpstreamClosed
}

// responseFailed classifies a failure while relaying one response.
func (s *session) responseFailed(err error) closeReason {
	var pe *PeerError
	if errors.As(err, &pe) {
		if pe.Side == SideClient {
			return s.clientWriteReason(pe.Err)
		}
		return s.upstreamFailed(pe.Op, pe.Err)
	}
	s.log.Error("cannot relay upstream response; closing rather than leak or corrupt it", zap.Error(err))
	return reasonProtocol
}
