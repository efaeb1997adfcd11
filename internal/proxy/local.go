package proxy

// The APIs the proxy answers itself after authentication (Options.Local:
// delegation tokens, SCRAM admin), with one audit line per request.

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// localAPIs is the pipeline stage of the APIs the proxy answers itself.
type localAPIs struct{}

func (localAPIs) serve(s *session, r *request) (bool, closeReason) {
	if _, ok := s.srv.local[r.key]; !ok {
		return true, ""
	}
	frame, reason := r.whole(s)
	if reason != "" {
		return false, reason
	}
	return false, s.answerAPI(frame)
}

// answerAPI answers a request for an API the proxy implements itself.
func (s *session) answerAPI(frame []byte) closeReason {
	h, err := protocol.ParseRequestHeader(frame)
	if err != nil {
		return reasonProtocol
	}
	r := s.srv.local[h.Key]
	if h.Version < r.Min || h.Version > r.Max {
		s.log.Info("request for an api version the proxy does not advertise; closing",
			zap.Int16(logAPIKey, h.Key), zap.Int16(logAPIVersion, h.Version))
		return reasonProtocol
	}
	req := kmsg.RequestForKey(h.Key)
	req.SetVersion(h.Version)
	if err := req.ReadFrom(frame[h.Len:]); err != nil {
		s.log.Info("malformed request", zap.Int16(logAPIKey, h.Key), zap.Error(err))
		return reasonProtocol
	}
	resp, err := s.srv.opts.Local.Handle(s.ctx, s.principal, s.result.TokenAuthenticated, req)
	if err != nil {
		s.srv.opts.Metrics.LocalRequest(h.Key, "internal_error")
		s.log.Error("local api failed", zap.Int16(logAPIKey, h.Key), zap.Error(err))
		return reasonProtocol
	}
	// Audit: one line per admin request (token or credential), never its
	// secrets (the response holds HMACs; only its outcome is logged).
	outcome := outcomeOf(resp)
	s.srv.opts.Metrics.LocalRequest(h.Key, outcome)
	s.log.Info("admin request", zap.Bool("audit", true), zap.String("api", kmsg.NameForKey(h.Key)),
		zap.Bool(logTokenAuth, s.result.TokenAuthenticated), zap.String("outcome", outcome))
	s.push(pending{local: protocol.AppendResponse(nil, h, resp)})
	return ""
}

// outcomeOf summarises a local API response: "ok", the top-level Kafka
// error name, or, for per-item results, the first failing item's error.
func outcomeOf(resp kmsg.Response) string {
	v := reflect.ValueOf(resp).Elem()
	if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Int() != 0 {
		return errName(int16(f.Int()))
	}
	if rs := v.FieldByName("Results"); rs.IsValid() && rs.Kind() == reflect.Slice {
		for i := 0; i < rs.Len(); i++ {
			if f := rs.Index(i).FieldByName("ErrorCode"); f.IsValid() && f.Int() != 0 {
				return errName(int16(f.Int()))
			}
		}
	}
	return "ok"
}

func errName(code int16) string {
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return ke.Message
		}
	}
	return "error"
}
