package proxy

// The SASL machine: the first login (run by the gate, gate.go) and KIP-368
// re-authentication (run by the relay's SASL stage) share its states
// (state.go), its handlers (17_sasl_handshake.go, 18_api_versions.go,
// 36_sasl_authenticate.go), one success path and one failure path. It never
// writes: it returns a reply, which the gate writes at once and the relay
// queues behind the responses still owed.

import (
	"context"
	"errors"
	"net"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// reauthMinInterval: Kafka starts at most one re-authentication a second
// on a connection (KafkaChannel.maybeBeginServerReauthentication); a
// SaslHandshake sooner gets ILLEGAL_SASL_STATE.
const reauthMinInterval = time.Second

// reply is what the SASL machine decided for one frame.
type reply struct {
	resp  []byte      // the frame to write; nil: nothing
	close closeReason // "": the connection stays open
	delay bool        // wait the failed-auth delay first, reading nothing (Selector's DelayedAuthenticationFailureClose)
}

// readSASLRequest decodes body into req (the API called name) at the
// header's version. A version above max, or a body that does not decode
// (logged), is refused: the connection is to close.
func (s *session) readSASLRequest(name string, h protocol.RequestHeader, body []byte, max int16, req kmsg.Request) bool {
	if h.Version > max {
		return false
	}
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		s.log.Info("malformed "+name+" request", zap.Error(err))
		return false
	}
	return true
}

// answer is a reply that writes resp and keeps the connection.
func answer(resp []byte) reply { return reply{resp: resp} }

// closeNow is a reply that closes at once with nothing written.
func closeNow(reason closeReason) reply { return reply{close: reason} }

// saslRequest runs one parsed request through the machine. The relay
// passes only requests saslAction does not call actNotSASL.
func (s *session) saslRequest(ctx context.Context, h protocol.RequestHeader, frame []byte) reply {
	body := frame[h.Len:]
	switch saslAction(s.state, h.Key, s.canReauthenticate()) {
	case actApiVersions:
		return s.handleApiVersions(ctx, h, body)
	case actHandshake:
		return s.handleHandshake(ctx, h, body)
	case actAuthenticate:
		return s.handleAuthenticate(ctx, h, body)
	case actAlreadyAuthenticated:
		return alreadyAuthenticated(h)
	case actIllegalStateFail:
		if h.Version > protocol.MaxVersion(h.Key) {
			return closeNow(reasonProtocol) // would not parse in Kafka
		}
		s.log.Info("unexpected request during SASL authentication",
			zap.Int16(logAPIKey, h.Key), zap.Int16(logAPIVersion, h.Version), zap.String(logState, s.state.String()))
		// A re-authentication ends as a failed authentication, which lets
		// the relay deliver the responses still owed before this one.
		reason := reasonProtocol
		if s.state == stateReauthenticating {
			reason = reasonAuthFailed
		}
		return reply{resp: errorResponse(h, kerr.IllegalSaslState.Code), close: reason, delay: true}
	}
	s.log.Info("request before authentication closed the connection",
		zap.Int16(logAPIKey, h.Key), zap.Int16(logAPIVersion, h.Version), zap.String(logState, s.state.String()))
	return closeNow(reasonProtocol)
}

// canReauthenticate reports whether a SaslHandshake may start a KIP-368
// re-authentication now: only a session with a deadline re-authenticates,
// and at most once a second.
func (s *session) canReauthenticate() bool {
	return s.state == stateAuthenticated && !s.deadline.IsZero() &&
		s.srv.opts.Now().Sub(s.reauthStart) >= reauthMinInterval
}

// alreadyAuthenticated is the broker's answer to a SASL request on an
// authenticated connection that is not re-authenticating
// (KafkaApis.handleSaslHandshakeRequest / handleSaslAuthenticateRequest):
// ILLEGAL_SASL_STATE, and the connection stays open. The body is not read.
func alreadyAuthenticated(h protocol.RequestHeader) reply {
	if h.Key == protocol.KeySASLHandshake {
		if h.Version > maxHandshakeVersion {
			return closeNow(reasonProtocol)
		}
		resp := kmsg.NewPtrSASLHandshakeResponse()
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return answer(protocol.AppendResponse(nil, h, resp))
	}
	if h.Version > maxAuthenticateVersion {
		return closeNow(reasonProtocol)
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.ErrorCode = kerr.IllegalSaslState.Code
	resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate request received after successful authentication")
	resp.SASLAuthBytes = []byte{}
	return answer(protocol.AppendResponse(nil, h, resp))
}

// saslSucceeded ends a SCRAM exchange that succeeded: it records the
// result and the KIP-368 session deadline and returns to stateAuthenticated.
// The first login also fixes the principal. The user name's count in the
// login throttle is cleared; the source address's is not.
func (s *session) saslSucceeded() {
	o := &s.srv.opts
	reauth := s.state == stateReauthenticating
	s.srv.backoff.release(s.slot)
	s.srv.backoff.succeed(s.backoffKeys()[1:]...)
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
	msg, outcome := "re-authenticated", "reauth_success"
	if !reauth {
		msg, outcome = "authenticated", "success"
		s.principal = "User:" + s.result.Principal
		s.log.with(zap.String(logPrincipal, s.principal), zap.String(logMechanism, string(s.mech)))
	}
	o.Metrics.Login(string(s.mech), outcome)
	s.log.Info(msg, zap.Bool("audit", true), zap.Bool(logTokenAuth, s.result.TokenAuthenticated),
		zap.Duration("session_lifetime", s.lifetime))
}

// saslFailed ends a SCRAM exchange that failed with err (a sasl error, or
// a principal change on re-authentication), counting and logging it, and
// returns the reply mapAuthError prescribes. h is the SaslAuthenticate
// request; raw is the v0 path, which has none. A failed login or
// re-authentication also counts in the login throttle, unless the throttle
// itself refused it.
func (s *session) saslFailed(h protocol.RequestHeader, err error, raw bool) reply {
	reauth := s.state == stateReauthenticating
	f := mapAuthError(err, s.mech, raw, reauth)
	outcome := "failure"
	if errors.Is(err, errThrottled) {
		outcome = "throttled"
	} else {
		s.srv.backoff.fail(s.backoffKeys()...)
	}
	s.srv.opts.Metrics.Login(string(s.mech), outcome)
	r := reply{close: reasonAuthFailed, delay: f.delay}
	if reauth {
		fields := []zap.Field{zap.Bool("audit", true), zap.String(logReason, f.reason)}
		if pc := (*principalChangeError)(nil); errors.As(err, &pc) {
			fields = append(fields, zap.String("new_principal", pc.to))
		}
		s.log.Info("re-authentication failed", fields...)
	} else {
		s.log.Info("authentication failed", zap.Bool("audit", true),
			zap.String(logMechanism, string(s.mech)),
			zap.String(logReason, f.reason),
			zap.String(logUsername, truncate(s.conv.Username(), 128)))
	}
	if f.respond {
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		resp.ErrorCode = f.code
		resp.ErrorMessage = kmsg.StringPtr(f.message)
		resp.SASLAuthBytes = []byte{}
		r.resp = protocol.AppendResponse(nil, h, resp)
	}
	return r
}

// admit asks Options.Admit about a first login whose SCRAM exchange has
// just completed; re-authentications keep the principal and are not asked.
func (s *session) admit() error {
	o := &s.srv.opts
	if o.Admit == nil || !s.conv.Done() || s.state == stateReauthenticating {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, o.AuthTimeout)
	defer cancel()
	res := s.conv.Result()
	var tokenID string
	if res.TokenAuthenticated {
		tokenID = res.Username
	}
	return o.Admit(ctx, "User:"+res.Principal, tokenID)
}

// refused ends a login whose credentials were right but whose principal
// may not use the proxy (err says why): a SaslAuthenticate error carrying
// err's text, after the failed-authentication delay; on the v0 path (raw)
// a close. For the login throttle it is a success: the password was right.
func (s *session) refused(h protocol.RequestHeader, err error, raw bool) reply {
	s.srv.backoff.release(s.slot)
	s.srv.backoff.succeed(s.backoffKeys()[1:]...)
	s.srv.opts.Metrics.Login(string(s.mech), "refused")
	s.log.Warn("authentication refused", zap.Bool("audit", true), zap.String(logMechanism, string(s.mech)),
		zap.String(logPrincipal, "User:"+s.conv.Result().Principal), zap.Error(err))
	r := reply{close: reasonAuthFailed, delay: true}
	if !raw {
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed: " + err.Error())
		resp.SASLAuthBytes = []byte{}
		r.resp = protocol.AppendResponse(nil, h, resp)
	}
	return r
}

// errThrottled is the failure of an attempt the login throttle refused
// before its password was checked. It is answered as any wrong password.
var errThrottled = &sasl.AuthError{Reason: "throttled", Err: sasl.ErrAuthFailed}

// hold runs before every SCRAM round of a login or re-authentication. The
// round that checks the password (client-final: the user name is known by
// then) waits until the login throttle admits it; errThrottled when the
// throttle refuses it, or when ctx ends while waiting. A failed
// re-authentication is a password guess too (possibly for another user's
// password, on someone else's authenticated connection), so the same
// throttle holds it.
func (s *session) hold(ctx context.Context) error {
	if s.conv.Username() == "" {
		return nil // client-first: nothing is checked yet
	}
	wait, slot, ok := s.srv.backoff.reserve(s.backoffKeys()...)
	if !ok {
		return errThrottled
	}
	s.slot = slot
	s.srv.opts.sleep(ctx, wait)
	if ctx.Err() != nil {
		return errThrottled
	}
	return nil
}

// backoffKeys are the login-throttle keys of this attempt: the source IP,
// then the user name the client sent (known or not), once it is known.
func (s *session) backoffKeys() []string {
	keys := []string{"ip:" + hostOf(s.raw.RemoteAddr())}
	if s.conv != nil && s.conv.Username() != "" {
		keys = append(keys, "user:"+s.conv.Username())
	}
	return keys
}

// hostOf is the IP of a remote address.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
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
