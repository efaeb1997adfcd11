package proxy

// SaslHandshake (key 17), versions 0-1. v0 (KIP-43) switches the connection
// to raw length-prefixed SASL tokens; v1 (KIP-152) to SaslAuthenticate
// requests. v2 is never advertised (KAFKA-9577).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

const maxHandshakeVersion = 1

func (s *session) handleHandshake(ctx context.Context, h protocol.RequestHeader, body []byte) *gateFail {
	if h.Version > maxHandshakeVersion {
		return &gateFail{reason: reasonProtocol}
	}
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		s.log.Info("malformed SaslHandshake request", zap.Error(err))
		return &gateFail{reason: reasonProtocol}
	}
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SupportedMechanisms = s.srv.mechanismNames
	mech, ok := s.srv.enabled(req.Mechanism)
	if !ok {
		// UnsupportedSaslMechanismException: error 33 with the enabled
		// list, after the failed-auth delay, then close.
		s.srv.opts.Metrics.Login("unknown", "unsupported_mechanism")
		s.log.Info("authentication failed", zap.Bool("audit", true), zap.String(logReason, "unsupported_mechanism"),
			zap.String(logMechanism, truncate(req.Mechanism, 64)))
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return &gateFail{reason: reasonAuthFailed, delay: true, resp: protocol.AppendResponse(nil, h, resp)}
	}
	conv, err := s.srv.opts.Auth.Start(ctx, mech)
	if err != nil {
		s.log.Error("cannot start SASL conversation", zap.Error(err))
		return &gateFail{reason: reasonAuthFailed}
	}
	if fail := s.writeOrFail(protocol.AppendResponse(nil, h, resp)); fail != nil {
		return fail
	}
	s.mech, s.conv = mech, conv
	s.log.Debug("sasl handshake accepted", zap.String(logMechanism, string(mech)), zap.Int16("handshake_version", h.Version))
	if h.Version == 0 {
		s.state = stateAuthenticateRaw
	} else {
		s.state = stateAuthenticate
	}
	return nil
}

// enabled matches a requested mechanism exactly, as Kafka does.
func (srv *Server) enabled(name string) (sasl.Mechanism, bool) {
	for _, m := range srv.opts.Mechanisms {
		if string(m) == name {
			return m, true
		}
	}
	return "", false
}

// truncate bounds client-supplied strings before they reach a log line.
func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	return v[:n] + "…"
}
