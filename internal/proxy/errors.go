package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Side names which peer a failure came from.
type Side string

// The two peers of a relayed connection.
const (
	SideClient   Side = "client"
	SideUpstream Side = "upstream"
)

// PeerError is an I/O failure attributed to one side of the relay.
type PeerError struct {
	Side Side
	Op   string // "read", "write", "dial"
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("%s %s: %v", e.Side, e.Op, e.Err) }
func (e *PeerError) Unwrap() error { return e.Err }

// closeReason is the short, bounded label for why a connection ended; it is
// used in the summary log line and as a metric label.
type closeReason string

const (
	reasonClientClosed   closeReason = "client_closed"
	reasonUpstreamClosed closeReason = "upstream_closed"
	reasonIdle           closeReason = "idle_timeout"
	reasonAuthTimeout    closeReason = "auth_timeout"
	reasonAuthFailed     closeReason = "auth_failed"
	reasonProtocol       closeReason = "protocol_error"
	reasonShutdown       closeReason = "shutdown"
	reasonUpstreamDial   closeReason = "upstream_unavailable"
	reasonTLSHandshake   closeReason = "tls_handshake_failed"
	reasonSessionExpired closeReason = "session_expired"
	reasonIOError        closeReason = "io_error"
)

// isClosedConnErr reports a routine disconnect: the peer closed (EOF), reset
// the connection, or we closed the socket ourselves. These log at debug.
func isClosedConnErr(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true // the peer closed, possibly mid-frame
	case errors.Is(err, net.ErrClosed):
		return true // we closed it (shutdown, other relay direction)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true // the peer reset or vanished
	}
	return false
}

// isTimeout reports a deadline expiry (idle, auth or write timeout).
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// authFailure is how a failed SASL step is answered on the wire: the single
// place that maps sasl errors to Kafka error codes and messages. Kafka's
// SaslServerAuthenticator.handleSaslToken answers every SaslException with
// one generic message that hides the cause; the exceptions are below
// (docs/protocol.md, "Failures" and "SCRAM failures").
type authFailure struct {
	respond bool   // write a SaslAuthenticate error response (v1 path only)
	delay   bool   // wait sasl.failed_auth_delay before responding/closing
	code    int16  // Kafka error code
	message string // the client-visible message
	reason  string // log/metric reason from the sasl package
}

// principalChangeError is Kafka's SaslAuthenticationException from
// ReauthInfo.ensurePrincipalUnchanged: a re-authentication logged in as
// another principal.
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

// mapAuthError maps the error of a SCRAM step (Conversation.Step, or a
// principal change) to the wire. raw is the v0 handshake path (no
// SaslAuthenticate framing), reauth selects Kafka's "re-authentication"
// wording.
func mapAuthError(err error, m sasl.Mechanism, raw, reauth bool) authFailure {
	f := authFailure{reason: sasl.Reason(err), code: kerr.SaslAuthenticationFailed.Code}
	var pc *principalChangeError
	switch {
	case errors.As(err, &pc):
		// A SaslAuthenticationException: its own message reaches the client.
		f.reason, f.delay, f.respond, f.message = "principal_changed", true, true, pc.Error()
		return f
	case errors.Is(err, sasl.ErrProofLength):
		// ScramFormatter.xor throws IllegalArgumentException: not a SASL
		// exception, so Kafka closes with nothing written.
		return f
	case errors.Is(err, sasl.ErrAuthzIDMismatch):
		// A SaslAuthenticationException: the only SCRAM failure whose own
		// message reaches the client, after the delay.
		f.delay, f.respond, f.message = true, !raw, sasl.AuthzIDMismatchMessage
		return f
	}
	if raw {
		return f // SaslException on the v0 path is an IOException: close now
	}
	f.delay, f.respond = true, true
	f.message = genericAuthMessage(m, reauth)
	return f
}

// genericAuthMessage is the text Kafka sends for every SaslException, hiding
// the cause (SaslServerAuthenticator.handleSaslToken).
func genericAuthMessage(m sasl.Mechanism, reauth bool) string {
	phase := "authentication"
	if reauth {
		phase = "re-authentication"
	}
	return "Authentication failed during " + phase + " due to invalid credentials with SASL mechanism " + string(m)
}
