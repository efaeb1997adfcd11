package proxy

// SaslHandshake and SaslAuthenticate on an authenticated connection: KIP-368
// re-authentication when the session has a deadline, ILLEGAL_SASL_STATE
// otherwise (KafkaApis.handleSaslHandshakeRequest / ...AuthenticateRequest).

import (
	"errors"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// reauthMinInterval: Kafka starts at most one re-authentication a second
// on a connection; a SaslHandshake sooner gets ILLEGAL_SASL_STATE.
const reauthMinInterval = time.Second

// answerSASL handles a SASL frame after authentication, or any frame while a
// re-authentication is under way.
func (s *session) answerSASL(frame []byte) closeReason {
	h, err := protocol.ParseRequestHeader(frame)
	if err != nil || h.Version > protocol.MaxVersion(h.Key) {
		return reasonProtocol
	}
	if s.state == stateReauthenticating {
		if h.Key != protocol.KeySASLAuthenticate {
			// "Unexpected Kafka request of type X during SASL authentication."
			s.push(pending{local: errorResponse(h, kerr.IllegalSaslState.Code), closeAfter: reasonAuthFailed, delay: true})
			return reasonAuthFailed
		}
		return s.reauthStep(h, frame[h.Len:])
	}
	now := s.srv.opts.Now()
	if h.Key == protocol.KeySASLHandshake && !s.deadline.IsZero() && now.Sub(s.reauthStart) >= reauthMinInterval {
		return s.startReauth(h, frame[h.Len:], now)
	}
	var resp kmsg.Response
	switch h.Key {
	case protocol.KeySASLHandshake:
		if h.Version > maxHandshakeVersion {
			return reasonProtocol
		}
		r := kmsg.NewPtrSASLHandshakeResponse()
		r.ErrorCode = kerr.IllegalSaslState.Code
		resp = r
	default:
		if h.Version > maxAuthenticateVersion {
			return reasonProtocol
		}
		r := kmsg.NewPtrSASLAuthenticateResponse()
		r.ErrorCode = kerr.IllegalSaslState.Code
		r.ErrorMessage = kmsg.StringPtr("SaslAuthenticate request received after successful authentication")
		r.SASLAuthBytes = []byte{}
		resp = r
	}
	s.push(pending{local: protocol.AppendResponse(nil, h, resp)})
	return ""
}

// startReauth answers the SaslHandshake that opens a re-authentication.
// Kafka accepts the handshake even for another mechanism and fails on the
// next frame (SaslServerAuthenticator.reauthenticate), so do we.
func (s *session) startReauth(h protocol.RequestHeader, body []byte, now time.Time) closeReason {
	if h.Version > maxHandshakeVersion {
		return reasonProtocol
	}
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		return reasonProtocol
	}
	s.reauthStart = now
	s.state = stateReauthenticating
	s.reauthMismatch = ""
	if req.Mechanism != string(s.mech) {
		s.reauthMismatch = truncate(req.Mechanism, 64)
	} else if s.conv, _ = s.srv.opts.Auth.Start(s.ctx, s.mech); s.conv == nil {
		return reasonAuthFailed
	}
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SupportedMechanisms = s.srv.mechanismNames
	s.push(pending{local: protocol.AppendResponse(nil, h, resp)})
	return ""
}

// reauthStep runs one SaslAuthenticate round of a re-authentication.
func (s *session) reauthStep(h protocol.RequestHeader, body []byte) closeReason {
	o := &s.srv.opts
	if h.Version > maxAuthenticateVersion {
		return reasonProtocol
	}
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		return reasonProtocol
	}
	if s.reauthMismatch != "" {
		// SaslAuthenticationException with no response: delayed close.
		s.log.Info("re-authentication failed", zap.String(logReason, "mechanism_changed"),
			zap.String("requested_mechanism", s.reauthMismatch))
		o.Metrics.Login(string(s.mech), "failure")
		s.push(pending{closeAfter: reasonAuthFailed, delay: true})
		return reasonAuthFailed
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.ErrorMessage = kmsg.StringPtr("")
	reply, err := s.conv.Step(req.SASLAuthBytes)
	if err == nil && s.conv.Done() && "User:"+s.conv.Result().Principal != s.principal {
		// KafkaPrincipal.equals compares type and name only: a token of
		// the same owner may replace a password login and back.
		err = &principalChangeError{from: s.principal, to: "User:" + s.conv.Result().Principal}
	}
	if err != nil {
		return s.reauthFailed(h, err, resp)
	}
	resp.SASLAuthBytes = reply
	if s.conv.Done() {
		s.result = s.conv.Result()
		s.conv = nil
		now := o.Now()
		var has bool
		s.lifetime, has = sessionLifetime(now, s.result.TokenExpiry, o.MaxReauth)
		s.deadline = time.Time{}
		if has {
			s.deadline = now.Add(s.lifetime)
		}
		s.state = stateAuthenticated
		resp.SessionLifetimeMillis = s.lifetime.Milliseconds()
		o.Metrics.Login(string(s.mech), "reauth_success")
		s.log.Info("re-authenticated", zap.Bool("audit", true), zap.Bool(logTokenAuth, s.result.TokenAuthenticated),
			zap.Duration("session_lifetime", s.lifetime))
	}
	s.push(pending{local: protocol.AppendResponse(nil, h, resp)})
	return ""
}

// principalChangeError is Kafka's SaslAuthenticationException from
// ReauthInfo.ensurePrincipalUnchanged.
type principalChangeError struct{ from, to string }

func (e *principalChangeError) Error() string {
	dot := func(p string) string { // KafkaPrincipal rendered "%s.%s" by Kafka here
		for i := 0; i < len(p); i++ {
			if p[i] == ':' {
				return p[:i] + "." + p[i+1:]
			}
		}
		return p
	}
	return "Cannot change principals during re-authentication from " + dot(e.from) + ": " + dot(e.to)
}

func (s *session) reauthFailed(h protocol.RequestHeader, err error, resp *kmsg.SASLAuthenticateResponse) closeReason {
	s.srv.opts.Metrics.Login(string(s.mech), "failure")
	var pc *principalChangeError
	if errors.As(err, &pc) {
		s.log.Info("re-authentication failed", zap.String(logReason, "principal_changed"), zap.String("new_principal", pc.to))
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(pc.Error())
		resp.SASLAuthBytes = []byte{}
		s.push(pending{local: protocol.AppendResponse(nil, h, resp), closeAfter: reasonAuthFailed, delay: true})
		return reasonAuthFailed
	}
	f := mapAuthError(err, s.mech, false, true)
	s.log.Info("re-authentication failed", zap.Bool("audit", true), zap.String(logReason, f.reason))
	p := pending{closeAfter: reasonAuthFailed, delay: f.delay}
	if f.respond {
		resp.ErrorCode = f.code
		resp.ErrorMessage = kmsg.StringPtr(f.message)
		resp.SASLAuthBytes = []byte{}
		p.local = protocol.AppendResponse(nil, h, resp)
	}
	s.push(p)
	return reasonAuthFailed
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
