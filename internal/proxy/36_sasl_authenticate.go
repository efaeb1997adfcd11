package proxy

// SaslAuthenticate (key 36), versions 0-2 (v1 adds session_lifetime_ms, v2
// is flexible), and the raw token rounds that follow a v0 SaslHandshake.

import (
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

const maxAuthenticateVersion = 2

func (s *session) handleAuthenticate(h protocol.RequestHeader, body []byte) *gateFail {
	if h.Version > maxAuthenticateVersion {
		return &gateFail{reason: reasonProtocol}
	}
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		s.log.Info("malformed SaslAuthenticate request", zap.Error(err))
		return &gateFail{reason: reasonProtocol}
	}
	reply, err := s.conv.Step(req.SASLAuthBytes)
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.ErrorMessage = kmsg.StringPtr("") // Kafka's schema default, not null
	if err != nil {
		f := s.authFailed(err, false)
		wait := s.srv.backoff.fail(s.backoffKeys()...)
		if !f.respond {
			return &gateFail{reason: reasonAuthFailed, delay: f.delay, wait: wait}
		}
		resp.ErrorCode = f.code
		resp.ErrorMessage = kmsg.StringPtr(f.message)
		resp.SASLAuthBytes = []byte{}
		return &gateFail{reason: reasonAuthFailed, delay: f.delay, wait: wait, resp: protocol.AppendResponse(nil, h, resp)}
	}
	resp.SASLAuthBytes = reply
	if s.conv.Done() {
		s.authSucceeded()
		resp.SessionLifetimeMillis = s.lifetime.Milliseconds()
	}
	return s.writeOrFail(protocol.AppendResponse(nil, h, resp))
}

// rawStep runs one SCRAM round on the v0 path: the frame is the bare token
// and the reply goes back size-prefixed with no Kafka header (spec §2.4).
func (s *session) rawStep(token []byte) *gateFail {
	reply, err := s.conv.Step(token)
	if err != nil {
		f := s.authFailed(err, true)
		return &gateFail{reason: reasonAuthFailed, delay: f.delay, wait: s.srv.backoff.fail(s.backoffKeys()...)}
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(reply)), uint32(len(reply)))
	out = append(out, reply...)
	if fail := s.writeOrFail(out); fail != nil {
		return fail
	}
	if s.conv.Done() {
		// Authentication completes once server-final has been written.
		s.authSucceeded()
	}
	return nil
}

// authFailed logs and counts a failed SCRAM step and returns its wire form.
func (s *session) authFailed(err error, raw bool) authFailure {
	f := mapAuthError(err, s.mech, raw, false)
	s.srv.opts.Metrics.Login(string(s.mech), "failure")
	s.log.Info("authentication failed", zap.Bool("audit", true),
		zap.String(logMechanism, string(s.mech)),
		zap.String(logReason, f.reason),
		zap.String(logUsername, truncate(s.conv.Username(), 128)))
	return f
}

// backoffKeys are the failed-login backoff keys of this attempt: the user
// name the client sent (known or not) and the source IP.
func (s *session) backoffKeys() []string {
	keys := []string{"ip:" + hostOf(s.raw.RemoteAddr())}
	if s.conv != nil && s.conv.Username() != "" {
		keys = append(keys, "user:"+s.conv.Username())
	}
	return keys
}

// authSucceeded records the principal and the KIP-368 session deadline.
func (s *session) authSucceeded() {
	o := &s.srv.opts
	s.srv.backoff.succeed(s.backoffKeys()...)
	s.result = s.conv.Result()
	s.conv = nil
	s.principal = "User:" + s.result.Principal
	now := o.Now()
	var has bool
	s.lifetime, has = sessionLifetime(now, s.result.TokenExpiry, o.MaxReauth)
	if has {
		s.deadline = now.Add(s.lifetime)
	}
	s.state = stateAuthenticated
	s.log.with(zap.String(logPrincipal, s.principal), zap.String(logMechanism, string(s.mech)))
	o.Metrics.Login(string(s.mech), "success")
	s.log.Info("authenticated", zap.Bool("audit", true), zap.Bool(logTokenAuth, s.result.TokenAuthenticated),
		zap.Duration("session_lifetime", s.lifetime))
}

// hostOf is the IP of a remote address.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}
