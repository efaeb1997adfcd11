package proxy

import (
	"context"
	"errors"
	"io"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// gateFail ends an unauthenticated connection. With delay set the failed-auth
// delay runs first (Selector's DelayedAuthenticationFailureClose); resp, if
// any, is written only when it ends, and nothing the client sends meanwhile is
// read.
type gateFail struct {
	reason closeReason
	delay  bool
	wait   time.Duration // overrides the failed-auth delay (login backoff)
	resp   []byte
}

// authenticate runs the SASL gate until the client is authenticated (ok) or
// the connection must close (the reason is returned).
func (s *session) authenticate(ctx context.Context) (closeReason, bool) {
	for {
		frame, fail := s.readPreAuthFrame()
		if fail == nil {
			if s.state == stateAuthenticateRaw {
				fail = s.rawStep(frame)
			} else {
				fail = s.gateRequest(ctx, frame)
			}
		}
		if fail == nil && s.state == stateAuthenticated {
			return "", true
		}
		if fail != nil {
			if fail.delay {
				sleep(ctx, max(fail.wait, s.srv.opts.FailedAuthDelay))
			}
			if fail.resp != nil && ctx.Err() == nil {
				_ = s.write(fail.resp)
			}
			return fail.reason, false
		}
	}
}

// readPreAuthFrame reads one frame under sasl.max_receive_size; an oversized
// or negative size fails after the delay with no response (CVE-2022-34917).
func (s *session) readPreAuthFrame() ([]byte, *gateFail) {
	o := &s.srv.opts
	n, err := protocol.ReadSize(s.conn, &s.sizeBuf, o.MaxReceiveSize)
	if err != nil {
		return nil, s.preAuthReadFail(err)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(s.conn, frame); err != nil {
		return nil, s.preAuthReadFail(err)
	}
	s.fromClient.Add(int64(4 + n))
	return frame, nil
}

func (s *session) preAuthReadFail(err error) *gateFail {
	var fse *protocol.FrameSizeError
	switch {
	case errors.As(err, &fse):
		if fse.Hint != "" {
			s.log.Warn("client is not speaking Kafka", zap.String(logReason, fse.Hint))
		} else {
			s.log.Info("pre-authentication frame too large", zap.Int64("size", fse.Size), zap.Int("max", fse.Max))
		}
		return &gateFail{reason: reasonProtocol, delay: true}
	case isTimeout(err):
		s.log.Info("authentication timed out", zap.String(logState, s.state.String()))
		return &gateFail{reason: reasonAuthTimeout}
	case isClosedConnErr(err):
		return &gateFail{reason: reasonClientClosed}
	}
	s.log.Info("read failed during authentication", zap.Error(err))
	return &gateFail{reason: reasonIOError}
}

// gateRequest dispatches one Kafka request received before authentication.
func (s *session) gateRequest(ctx context.Context, frame []byte) *gateFail {
	h, err := protocol.ParseRequestHeader(frame)
	if err != nil {
		s.log.Info("unparseable request before authentication", zap.Error(err))
		return &gateFail{reason: reasonProtocol}
	}
	s.requests.Add(1)
	switch preAuthAction(s.state, h.Key) {
	case actApiVersions:
		return s.handleApiVersions(ctx, h, frame[h.Len:])
	case actHandshake:
		return s.handleHandshake(ctx, h, frame[h.Len:])
	case actAuthenticate:
		return s.handleAuthenticate(h, frame[h.Len:])
	case actIllegalStateFail:
		if h.Version > protocol.MaxVersion(h.Key) {
			return &gateFail{reason: reasonProtocol} // would not parse in Kafka
		}
		s.log.Info("unexpected request during SASL authentication",
			zap.Int16(logAPIKey, h.Key), zap.Int16(logAPIVersion, h.Version))
		return &gateFail{reason: reasonProtocol, delay: true,
			resp: errorResponse(h, kerr.IllegalSaslState.Code)}
	}
	s.log.Info("request before authentication closed the connection",
		zap.Int16(logAPIKey, h.Key), zap.Int16(logAPIVersion, h.Version), zap.String(logState, s.state.String()))
	return &gateFail{reason: reasonProtocol}
}

// errorResponse builds a response for any API carrying code at the top
// level, as Kafka's AbstractRequest.getErrorResponse does for the APIs that
// have a top-level error code. APIs without one get their empty response.
func errorResponse(h protocol.RequestHeader, code int16) []byte {
	resp := kmsg.ResponseForKey(h.Key)
	if f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	return protocol.AppendResponse(nil, h, resp)
}
