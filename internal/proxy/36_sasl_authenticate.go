package proxy

// SaslAuthenticate (key 36), versions 0-2 (v1 adds session_lifetime_ms, v2
// is flexible), for a login or a KIP-368 re-authentication, and the raw
// token rounds that follow a v0 SaslHandshake.

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

const maxAuthenticateVersion = 2

func (s *session) handleAuthenticate(ctx context.Context, h protocol.RequestHeader, body []byte) reply {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	if !s.readSASLRequest("SaslAuthenticate", h, body, maxAuthenticateVersion, req) {
		return closeNow(reasonProtocol)
	}
	if s.reauthMismatch != "" {
		// The re-authentication asked for another mechanism: Kafka's
		// SaslAuthenticationException with no response, a delayed close.
		s.log.Info("re-authentication failed", zap.Bool("audit", true), zap.String(logReason, "mechanism_changed"),
			zap.String("requested_mechanism", s.reauthMismatch))
		s.srv.opts.Metrics.Login(string(s.mech), "failure")
		return reply{close: reasonAuthFailed, delay: true}
	}
	if err := s.hold(ctx); err != nil {
		return s.saslFailed(h, err, false)
	}
	out, err := s.conv.Step(req.SASLAuthBytes)
	if err == nil && s.conv.Done() && s.state == stateReauthenticating && "User:"+s.conv.Result().Principal != s.principal {
		// ReauthInfo.ensurePrincipalUnchanged. KafkaPrincipal.equals
		// compares type and name only: a token of the same owner may
		// replace a password login and back.
		err = &principalChangeError{from: s.principal, to: "User:" + s.conv.Result().Principal}
	}
	if err != nil {
		return s.saslFailed(h, err, false)
	}
	if err := s.admit(); err != nil {
		return s.refused(h, err, false)
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.ErrorMessage = kmsg.StringPtr("") // Kafka's schema default, not null
	resp.SASLAuthBytes = out
	if s.conv.Done() {
		s.saslSucceeded()
		resp.SessionLifetimeMillis = s.lifetime.Milliseconds()
	}
	return answer(protocol.AppendResponse(nil, h, resp))
}

// rawToken runs one SCRAM round on the v0 path: the frame is the bare
// token and the reply goes back size-prefixed with no Kafka header
// (SaslServerAuthenticator before KIP-152; docs/protocol.md, "Handshake
// versions"). Authentication completes with the round that sends
// server-final.
func (s *session) rawToken(ctx context.Context, token []byte) reply {
	if err := s.hold(ctx); err != nil {
		return s.saslFailed(protocol.RequestHeader{}, err, true)
	}
	out, err := s.conv.Step(token)
	if err != nil {
		return s.saslFailed(protocol.RequestHeader{}, err, true)
	}
	if err := s.admit(); err != nil {
		return s.refused(protocol.RequestHeader{}, err, true)
	}
	framed := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(len(out)))
	framed = append(framed, out...)
	if s.conv.Done() {
		s.saslSucceeded()
	}
	return answer(framed)
}
