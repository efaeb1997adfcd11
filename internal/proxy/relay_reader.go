package proxy

// The relay's reader half: it reads each client request's size and first
// chunk and runs it through the pipeline (pipeline.go).

import (
	"context"
	"encoding/binary"
	"errors"
	"io"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// readLoop runs every client request through the pipeline until the
// connection ends, and returns why.
func (s *session) readLoop(ctx, drain context.Context) closeReason {
	o := &s.srv.opts
	if _, err := s.srv.versions.get(ctx); err != nil {
		s.log.Warn("upstream api versions unavailable", zap.Error(err))
		return reasonUpstreamDial
	}
	fr := protocol.NewFrameReader(s.conn, o.MaxRequestSize, nil)
	for {
		_ = s.conn.SetReadDeadline(o.Now().Add(o.IdleTimeout))
		if drain.Err() != nil {
			return reasonShutdown
		}
		// While re-authenticating, every frame is the SASL machine's and
		// capped at sasl.max_receive_size (the SASL stage refuses a larger
		// one), even when that is above the request cap.
		fr.SetMax(o.MaxRequestSize)
		if s.state == stateReauthenticating {
			fr.SetMax(max(o.MaxRequestSize, o.MaxReceiveSize))
		}
		n, err := fr.Next()
		if err != nil {
			return s.clientReadReason(drain, err, true)
		}
		if n < 8 {
			s.log.Info("request frame too short", zap.Int("size", n))
			return reasonProtocol
		}
		s.fromClient.Add(int64(4 + n))
		o.Metrics.BytesRelayed(int64(4+n), 0)
		if reason := s.readRequest(ctx, drain, fr, n); reason != "" {
			return reason
		}
	}
}

// readRequest reads the first chunk of a request of n bytes whose size fr
// has just read, and runs it through the pipeline. The chunk is pooled and
// goes back once the request is dealt with: the body is read from fr.Rest,
// not through the frame reader's own buffer, whose growth as bytes arrive
// would cost extra reads on this path.
func (s *session) readRequest(ctx, drain context.Context, fr *protocol.FrameReader, n int) closeReason {
	bufp := s.srv.buffers.Get(chunkSize)
	defer s.srv.buffers.Put(bufp)
	buf := *bufp
	binary.BigEndian.PutUint32(buf, uint32(n))
	body := fr.Rest()
	// The request header's fixed part first: a SASL frame over its cap is
	// refused before any more of it is read.
	hdr := min(n, 8)
	if _, err := io.ReadFull(body, buf[4:4+hdr]); err != nil {
		return s.clientReadReason(drain, err, false)
	}
	if key, _, _, _ := protocol.PeekHeader(buf[4 : 4+hdr]); s.saslFrameTooLarge(key, n) {
		return s.queueReply(reply{close: reasonAuthFailed, delay: true})
	}
	head := min(n, len(buf)-4)
	if _, err := io.ReadFull(body, buf[4+hdr:4+head]); err != nil {
		return s.clientReadReason(drain, err, false)
	}
	r := request{size: n, chunk: buf, head: buf[4 : 4+head], body: body, ctx: ctx, drain: drain}
	r.key, r.version, r.corr, _ = protocol.PeekHeader(r.head)
	s.requests.Add(1)
	for _, st := range s.srv.pipeline {
		pass, reason := st.serve(s, &r)
		if !pass {
			return reason
		}
	}
	s.log.Error("no pipeline stage took the request", zap.Int16(logAPIKey, r.key))
	return reasonProtocol
}

// saslFrameTooLarge reports a frame of n bytes that the SASL machine would
// take but that is over sasl.max_receive_size. Kafka's authenticator reads
// re-authentication frames with the pre-authentication cap
// (sasl.server.max.receive.size) and fails the authentication on a larger
// one: a delayed close with nothing written. Any SaslHandshake or
// SaslAuthenticate on an authenticated connection gets the same cap, so no
// SASL frame is held whole above it.
func (s *session) saslFrameTooLarge(key int16, n int) bool {
	max := s.srv.opts.MaxReceiveSize
	if n <= max || (s.state != stateReauthenticating && key != protocol.KeySASLHandshake && key != protocol.KeySASLAuthenticate) {
		return false
	}
	s.log.Info("SASL frame too large on an authenticated connection", zap.Int16(logAPIKey, key), zap.Int("size", n), zap.Int("max", max))
	return true
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
