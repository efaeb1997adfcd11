package proxy

// The gate runs the SASL machine (sasl.go) for a connection's first login,
// before the relay starts, writing each reply at once.

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// authenticate runs the SASL gate until the client is authenticated (ok) or
// the connection must close (the reason is returned).
func (s *session) authenticate(ctx context.Context) (closeReason, bool) {
	fr := protocol.NewFrameReader(s.conn, s.srv.opts.MaxReceiveSize, &s.srv.buffers)
	defer fr.Release()
	for {
		var r reply
		frame, err := fr.Read()
		switch {
		case err != nil:
			r = s.preAuthReadFail(err)
		case s.state == stateAuthenticateRaw:
			s.fromClient.Add(int64(4 + len(frame)))
			r = s.rawToken(ctx, frame)
		default:
			s.fromClient.Add(int64(4 + len(frame)))
			r = s.gateRequest(ctx, frame)
		}
		if reason := s.gateReply(ctx, r); reason != "" {
			return reason, false
		}
		if s.state == stateAuthenticated {
			return "", true
		}
	}
}

// gateRequest parses one Kafka request received before authentication and
// runs it through the machine.
func (s *session) gateRequest(ctx context.Context, frame []byte) reply {
	h, err := protocol.ParseRequestHeader(frame)
	if err != nil {
		s.log.Info("unparseable request before authentication", zap.Error(err))
		return closeNow(reasonProtocol)
	}
	s.requests.Add(1)
	return s.saslRequest(ctx, h, frame)
}

// gateReply carries out a reply before authentication: the delay first
// (reading nothing), then the response, then the close. A failed write of
// a response that keeps the connection ends it.
func (s *session) gateReply(ctx context.Context, r reply) closeReason {
	if r.delay {
		s.srv.opts.sleep(ctx, s.srv.opts.FailedAuthDelay)
	}
	if r.close != "" {
		if r.resp != nil && ctx.Err() == nil {
			_ = s.write(r.resp)
		}
		return r.close
	}
	if r.resp == nil {
		return ""
	}
	if err := s.write(r.resp); err != nil {
		if isTimeout(err) {
			return reasonAuthTimeout
		}
		return reasonClientClosed
	}
	return ""
}

// preAuthReadFail classifies a failed frame read before authentication. An
// oversized or negative size fails after the delay with no response
// (CVE-2022-34917: sasl.server.max.receive.size).
func (s *session) preAuthReadFail(err error) reply {
	var fse *protocol.FrameSizeError
	switch {
	case errors.As(err, &fse):
		if fse.Hint != "" {
			s.log.Warn("client is not speaking Kafka", zap.String(logReason, fse.Hint))
		} else {
			s.log.Info("pre-authentication frame too large", zap.Int64("size", fse.Size), zap.Int("max", fse.Max))
		}
		return reply{close: reasonProtocol, delay: true}
	case isTimeout(err):
		s.log.Info("authentication timed out", zap.String(logState, s.state.String()))
		return closeNow(reasonAuthTimeout)
	case isClosedConnErr(err):
		return closeNow(reasonClientClosed)
	}
	s.log.Info("read failed during authentication", zap.Error(err))
	return closeNow(reasonIOError)
}
