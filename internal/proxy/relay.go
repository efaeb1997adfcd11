package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
)

// chunkSize is the relay's copy unit. Frames are streamed through pooled
// chunks, so an idle connection holds no buffer and a 50 MiB fetch response
// never sits whole in memory.
const chunkSize = 64 << 10

// maxResponseSize bounds upstream response frames (the upstream is trusted
// more than a client, but a corrupt size must not allocate gigabytes).
const maxResponseSize = 1 << 30

// pending is one expected response, queued in request order. Kafka clients
// require responses in request order (Java's InFlightRequests.completeNext),
// so local answers wait their turn behind the upstream's.
type pending struct {
	corr         int32
	key, version int16
	local        []byte                            // a complete frame built by the proxy; nil: the upstream answers
	rewrite      bool                              // decode and rewrite the upstream's answer
	scan         func(rewrite.Source, int16) error // stream the answer through this check
	closeAfter   closeReason                       // close the connection once local (if any) is written
	delay        bool                              // wait the failed-auth delay before writing local
	start        time.Time                         // when the request was read, for latency
	// reauth, when set, asks the writer to re-authenticate the upstream
	// connection (nothing is in flight once it gets here) and report.
	reauth chan error
}

// upstreamSession is implemented by upstream connections whose broker
// session expires (KIP-368, client side): the relay re-authenticates them
// in-band, between requests.
type upstreamSession interface {
	ReauthAt() time.Time
	Reauthenticate(ctx context.Context) error
}

// fromUpstream reports whether the upstream owes this response.
func (p pending) fromUpstream() bool { return p.local == nil && p.closeAfter == "" && p.reauth == nil }

// relay moves frames both ways until either side ends. The reader (this
// goroutine) forwards requests and queues what each expects back; the writer
// goroutine answers the queue in order. Both the upstream connection and the
// writer start with the first request that needs them. A client EOF or a
// shutdown drain stops the reader at a frame boundary and lets the writer
// deliver every response still owed; any other failure aborts both
// directions.
func (s *session) relay(ctx, drain context.Context) closeReason {
	stopHard := context.AfterFunc(ctx, func() { _ = s.raw.SetDeadline(time.Unix(1, 0)) })
	defer stopHard()
	stopDrain := context.AfterFunc(drain, func() { _ = s.raw.SetReadDeadline(time.Unix(1, 0)) })
	defer stopDrain()
	reason := s.readLoop(ctx, drain)
	if s.writerDone == nil {
		if s.up != nil {
			_ = s.up.Close()
		}
		return reason
	}
	close(s.queue)
	// After a client EOF or a drain the writer still delivers what is owed
	// (the upstream is not half-closed: Kafka closes on EOF and would drop
	// those responses). Any other end aborts the writer, which may be
	// waiting on the upstream.
	if s.up != nil && reason != reasonClientClosed && reason != reasonShutdown && reason != reasonAuthFailed {
		_ = s.up.SetDeadline(time.Unix(1, 0))
	}
	wreason := <-s.writerDone
	if s.up != nil {
		s.stopUp()
		_ = s.up.Close()
	}
	if wreason != "" {
		return wreason
	}
	return reason
}

// push queues an expected response, starting the writer on first use. The
// queue (MaxInFlight entries, 25 KiB at the default) is made then too, so a
// connection that only logs in does not pay for it.
func (s *session) push(p pending) {
	if s.writerDone == nil {
		s.queue = make(chan pending, s.srv.opts.MaxInFlight)
		s.writerDone = make(chan closeReason, 1)
		s.writerGone = make(chan struct{})
		go func() { defer close(s.writerGone); s.writerDone <- s.writeLoop(s.queue) }()
	}
	s.queue <- p
}

// relayReply queues a reply of the SASL machine behind the responses still
// owed, and returns its close reason: the reader stops there, the writer
// delivers what is owed, then the reply.
func (s *session) relayReply(r reply) closeReason {
	if r.resp != nil || r.delay {
		s.push(pending{local: r.resp, closeAfter: r.close, delay: r.delay})
	}
	return r.close
}

// upstream returns the upstream connection, dialing it on first use. The
// writer reads s.up only for entries queued after this returns.
func (s *session) upstream(ctx context.Context) (net.Conn, closeReason) {
	if s.up != nil {
		return s.up, ""
	}
	o := &s.srv.opts
	up, err := o.Upstream.Dial(ctx, s.principal, s.node)
	if err != nil {
		o.Metrics.UpstreamDialFailed()
		s.log.Warn("upstream dial failed", zap.Int32("node", s.node), zap.Error(err))
		return nil, reasonUpstreamDial
	}
	s.up = up
	s.stopUp = context.AfterFunc(ctx, func() { _ = up.SetDeadline(time.Unix(1, 0)) })
	return up, ""
}

// readLoop forwards client requests upstream and answers the ones the proxy
// owns, queueing one pending entry per expected response.
func (s *session) readLoop(ctx, drain context.Context) closeReason {
	o := &s.srv.opts
	if _, err := s.srv.versions.get(ctx); err != nil {
		s.log.Warn("upstream api versions unavailable", zap.Error(err))
		return reasonUpstreamDial
	}
	for {
		_ = s.conn.SetReadDeadline(o.Now().Add(o.IdleTimeout))
		if drain.Err() != nil {
			return reasonShutdown
		}
		n, err := protocol.ReadSize(s.conn, &s.sizeBuf, o.MaxRequestSize)
		if err != nil {
			return s.clientReadReason(drain, err, true)
		}
		if n < 8 {
			s.log.Info("request frame too short", zap.Int("size", n))
			return reasonProtocol
		}
		s.fromClient.Add(int64(4 + n))
		o.Metrics.BytesRelayed(int64(4+n), 0)
		if reason := s.relayRequest(ctx, drain, n); reason != "" {
			return reason
		}
	}
}

// relayRequest handles one client frame of n bytes whose size was just read.
func (s *session) relayRequest(ctx, drain context.Context, n int) closeReason {
	o := &s.srv.opts
	bufp := s.srv.getChunk()
	defer s.srv.putChunk(bufp)
	buf := *bufp
	copy(buf, s.sizeBuf[:])
	head := min(n, len(buf)-4)
	if _, err := io.ReadFull(s.conn, buf[4:4+head]); err != nil {
		return s.clientReadReason(drain, err, false)
	}
	key, version, corr, _ := protocol.PeekHeader(buf[4:])
	s.requests.Add(1)

	// KIP-368: an expired session is closed on its next request, unless that
	// request starts or continues a re-authentication
	// (SocketServer.processCompletedReceives).
	if !s.deadline.IsZero() && o.Now().After(s.deadline) && key != protocol.KeySASLHandshake && s.state != stateReauthenticating {
		s.log.Info("session expired; closing on next request")
		return reasonSessionExpired
	}

	_, isLocal := s.srv.local[key]
	isSASL := saslAction(s.state, key, s.canReauthenticate()) != actNotSASL
	if isLocal || isSASL {
		frame, reason := s.readWhole(drain, buf[4:4+head], n)
		if reason != "" {
			return reason
		}
		if isSASL {
			h, err := protocol.ParseRequestHeader(frame)
			if err != nil {
				return reasonProtocol
			}
			return s.relayReply(s.saslRequest(s.ctx, h, frame))
		}
		return s.answerAPI(frame)
	}
	up, reason := s.upstream(ctx)
	if reason != "" {
		return reason
	}
	if us, ok := up.(upstreamSession); ok && o.Now().After(us.ReauthAt()) {
		if reason := s.reauthUpstream(); reason != "" {
			return reason
		}
	}
	// The table was loaded when the relay started and is refreshed by every
	// new connection; the hot path only loads the pointer.
	table := s.srv.versions.cur.Load()
	if !table.allowed(key, version) {
		s.log.Info("request for an api or version the proxy does not advertise; closing",
			zap.Int16(logAPIKey, key), zap.Int16(logAPIVersion, version))
		return reasonProtocol
	}
	expect := true
	if key == protocol.KeyProduce {
		acks, reason := s.produceAcks(buf[4:4+head], n)
		if reason != "" {
			return reason
		}
		expect = acks != 0 // acks=0: Kafka sends no response at all
	}
	if expect {
		s.push(pending{corr: corr, key: key, version: version, start: o.Now(),
			rewrite: key == protocol.KeyApiVersions || o.Registry.NeedsRewrite(key, version),
			scan:    o.Registry.Scanner(key, version)})
	}

	_ = up.SetWriteDeadline(o.Now().Add(o.IdleTimeout))
	if _, err := up.Write(buf[:4+head]); err != nil {
		return s.upstreamFailed("write", err)
	}
	for rest := n - head; rest > 0; {
		k := min(rest, len(buf))
		if _, err := io.ReadFull(s.conn, buf[:k]); err != nil {
			return s.clientReadReason(drain, err, false)
		}
		if _, err := up.Write(buf[:k]); err != nil {
			return s.upstreamFailed("write", err)
		}
		rest -= k
	}
	return ""
}

// reauthUpstream re-authenticates the upstream connection before the
// request about to be forwarded: the writer does it when every earlier
// response has been delivered, while this reader waits, so the exchange
// never interleaves with client traffic.
func (s *session) reauthUpstream() closeReason {
	done := make(chan error, 1)
	s.push(pending{reauth: done})
	select {
	case err := <-done:
		if err != nil {
			return reasonUpstreamClosed
		}
		s.log.Info("upstream re-authenticated")
		return ""
	case <-s.writerGone:
		return reasonUpstreamClosed
	}
}

// produceAcks reads acks from a Produce request whose first bytes are in
// head. A request whose header and transactional id do not fit in one chunk
// (64 KiB) is refused: the relay cannot tell whether it expects a response
// (listed in docs/unsupported.md).
func (s *session) produceAcks(head []byte, n int) (int16, closeReason) {
	parse := func(frame []byte) (int16, bool) {
		h, err := protocol.ParseRequestHeader(frame)
		if err != nil {
			return 0, false
		}
		return protocol.ProduceAcks(h.Version, frame[h.Len:])
	}
	if acks, ok := parse(head); ok {
		return acks, ""
	}
	s.log.Info("produce request header unreadable", zap.Int("head", len(head)), zap.Int("size", n))
	return 0, reasonProtocol
}

// readWhole completes a frame of n bytes whose first bytes are head.
func (s *session) readWhole(drain context.Context, head []byte, n int) ([]byte, closeReason) {
	frame := make([]byte, n)
	copy(frame, head)
	if _, err := io.ReadFull(s.conn, frame[len(head):]); err != nil {
		return nil, s.clientReadReason(drain, err, false)
	}
	return frame, ""
}

// writeLoop answers the queue in order: local frames as they are, upstream
// responses streamed (or decoded and rewritten when they carry endpoints).
// It returns "" once the queue is closed and drained.
func (s *session) writeLoop(queue <-chan pending) closeReason {
	o := &s.srv.opts
	var size [4]byte
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
				sleep(s.ctx, o.FailedAuthDelay)
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
		_ = up.SetReadDeadline(o.Now().Add(o.IdleTimeout))
		n, err := protocol.ReadSize(up, &size, maxResponseSize)
		if err == nil && n < 4 {
			err = protocol.ErrTruncated
		}
		if err != nil {
			return s.writerFailed(s.upstreamFailed("read", err))
		}
		switch {
		case p.scan != nil && n > chunkSize: // too large to hold: stream it through the check
			err = s.relayScanned(up, size, n, p)
		case p.rewrite:
			err = s.relayRewritten(up, size, n, p)
		default:
			err = s.relayStreamed(up, size, n, p)
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

func (s *session) relayStreamed(up net.Conn, size [4]byte, n int, p pending) error {
	bufp := s.srv.getChunk()
	defer s.srv.putChunk(bufp)
	buf := *bufp
	copy(buf, size[:])
	head := min(n, len(buf)-4)
	if _, err := io.ReadFull(up, buf[4:4+head]); err != nil {
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
		if _, err := io.ReadFull(up, buf[:k]); err != nil {
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
func (s *session) relayScanned(up net.Conn, size [4]byte, n int, p pending) error {
	bufp := s.srv.getChunk()
	defer s.srv.putChunk(bufp)
	src := &scanSource{s: s, up: up, buf: *bufp, left: n}
	src.w = copy(src.buf, size[:])
	src.r = 4
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
	up   net.Conn
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
		got, err := f.up.Read(f.buf[f.w : f.w+min(f.left, len(f.buf)-f.w)])
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
func (s *session) relayRewritten(up net.Conn, size [4]byte, n int, p pending) error {
	bufp := s.srv.frames.get(4 + n)
	defer s.srv.frames.put(bufp)
	buf := *bufp
	copy(buf, size[:])
	frame := buf[4:]
	if _, err := io.ReadFull(up, frame); err != nil {
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
	outp := s.srv.frames.get(n + 4 + 256)
	defer s.srv.frames.put(outp)
	out := append((*outp)[:4], frame[:hlen]...)
	out, changed, err := s.srv.opts.Registry.Response(out, p.key, p.version, frame[hlen:], s.srv.opts.AddrMap)
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

func (s *session) clientReadReason(drain context.Context, err error, atBoundary bool) closeReason {
	var fse *protocol.FrameSizeError
	switch {
	case errors.As(err, &fse):
		s.log.Info("request frame size refused; closing", zap.Int64("size", fse.Size), zap.Int("max", fse.Max), zap.String("hint", fse.Hint))
		return reasonProtocol
	case atBoundary && drain.Err() != nil:
		return reasonShutdown
	case isTimeout(err) && drain.Err() == nil:
		s.log.Debug("client idle timeout")
		return reasonIdle
	case atBoundary && isClosedConnErr(err):
		return reasonClientClosed
	case isClosedConnErr(err), isTimeout(err):
		s.log.Debug("client connection ended mid-frame", zap.Error(err))
		return reasonIOError
	}
	s.log.Info("client read failed", zap.Error(err))
	return reasonIOError
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
