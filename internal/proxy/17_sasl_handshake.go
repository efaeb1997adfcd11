package proxy

// SaslHandshake (key 17), versions 0-1. v0 (KIP-43) switches the connection
// to raw length-prefixed SASL tokens; v1 (KIP-152) to SaslAuthenticate
// requests. v2 is never advertised (KAFKA-9577). On an authenticated
// connection whose session has a deadline it starts a KIP-368
// re-authentication (SaslServerAuthenticator.reauthenticate).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

const maxHandshakeVersion = 1

func (s *session) handleHandshake(ctx context.Context, h protocol.RequestHeader, body []byte) reply {
	req := kmsg.NewPtrSASLHandshakeRequest()
	if !s.readSASLRequest("SaslHandshake", h, body, maxHandshakeVersion, req) {
		return closeNow(reasonProtocol)
	}
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SupportedMechanisms = s.srv.mechanismNames
	mech, ok := s.srv.enabled(req.Mechanism)
	if s.state == stateAuthenticated {
		// Re-authentication. Kafka accepts the handshake even for another
		// mechanism and fails on the next frame, so do we.
		s.state, s.reauthStart, s.reauthMismatch = stateReauthenticating, s.srv.opts.Now(), ""
		if !ok || mech != s.mech {
			s.reauthMismatch = truncate(req.Mechanism, 64)
			return answer(protocol.AppendResponse(nil, h, resp))
		}
	} else if !ok {
		// UnsupportedSaslMechanismException: error 33 with the enabled
		// list, after the failed-auth delay, then close.
		s.srv.opts.Metrics.Login("unknown", "unsupported_mechanism")
		s.log.Info("authentication failed", zap.Bool("audit", true), zap.String(logReason, "unsupported_mechanism"),
			zap.String(logMechanism, truncate(req.Mechanism, 64)))
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return reply{resp: protocol.AppendResponse(nil, h, resp), close: reasonAuthFailed, delay: true}
	}
	conv, err := s.srv.opts.Auth.Start(ctx, mech)
	if err != nil {
		s.log.Error("cannot start SASL conversation", zap.Error(err))
		return closeNow(reasonAuthFailed)
	}
	s.mech, s.conv = mech, conv
	s.log.Debug("sasl handshake accepted", zap.String(logMechanism, string(mech)), zap.Int16("handshake_version", h.Version))
	switch {
	case s.state == stateReauthenticating:
	case h.Version == 0:
		s.state = stateAuthenticateRaw
	default:
		s.state = stateAuthenticate
	}
	return answer(protocol.AppendResponse(nil, h, resp))
}
