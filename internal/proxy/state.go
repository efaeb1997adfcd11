package proxy

import "github.com/scram-proxy/scram-proxy/internal/protocol"

// state is where a connection stands in Kafka's SASL server state machine
// (SaslServerAuthenticator.SaslState). One machine serves the first login
// (the gate) and KIP-368 re-authentication (a stage of the relay).
type state uint8

const (
	// stateAwaitVersionsOrHandshake: INITIAL_REQUEST / HANDSHAKE_OR_VERSIONS_REQUEST.
	stateAwaitVersionsOrHandshake state = iota
	// stateAwaitHandshake: HANDSHAKE_REQUEST, after one successful ApiVersions.
	stateAwaitHandshake
	// stateAuthenticate: AUTHENTICATE after a v1 handshake (SaslAuthenticate frames).
	stateAuthenticate
	// stateAuthenticateRaw: AUTHENTICATE after a v0 handshake (raw SASL tokens).
	stateAuthenticateRaw
	// stateAuthenticated: COMPLETE; frames are relayed.
	stateAuthenticated
	// stateReauthenticating: REAUTH_PROCESS_HANDSHAKE and AUTHENTICATE of a
	// KIP-368 re-authentication (SaslAuthenticate frames).
	stateReauthenticating
)

func (s state) String() string {
	switch s {
	case stateAwaitVersionsOrHandshake:
		return "await_versions_or_handshake"
	case stateAwaitHandshake:
		return "await_handshake"
	case stateAuthenticate:
		return "authenticate"
	case stateAuthenticateRaw:
		return "authenticate_raw"
	case stateAuthenticated:
		return "authenticated"
	case stateReauthenticating:
		return "reauthenticating"
	}
	return "unknown"
}

// authenticating reports the states in which a SCRAM exchange runs.
func (s state) authenticating() bool {
	return s == stateAuthenticate || s == stateAuthenticateRaw || s == stateReauthenticating
}

// action is what the SASL machine does with a parsed request in a state.
type action uint8

const (
	actCloseNow             action = iota // close at once, nothing written
	actApiVersions                        // answer ApiVersions
	actHandshake                          // answer SaslHandshake (login, or start a re-authentication)
	actAuthenticate                       // run a SaslAuthenticate round
	actIllegalStateFail                   // that API's error response with 34, then delayed close
	actAlreadyAuthenticated               // ILLEGAL_SASL_STATE, the connection stays open
	actNotSASL                            // not the machine's: the relay's later stages take it
)

// saslAction is the single allow-list of the SASL machine: which API keys
// are legal in each state and what happens otherwise. canReauth tells
// whether an authenticated connection may start a re-authentication now
// (see session.canReauthenticate). It mirrors
// SaslServerAuthenticator.handleKafkaRequest and friends before
// authentication, and KafkaChannel.maybeBeginServerReauthentication plus
// KafkaApis.handleSaslHandshakeRequest / handleSaslAuthenticateRequest after.
func saslAction(s state, key int16, canReauth bool) action {
	switch s {
	case stateAwaitVersionsOrHandshake:
		switch key {
		case protocol.KeyApiVersions:
			return actApiVersions
		case protocol.KeySASLHandshake:
			return actHandshake
		}
		// Kafka 4.0 (InvalidRequestException) closes at once with no
		// response; 3.x waited for the failed-auth delay first.
		return actCloseNow
	case stateAwaitHandshake:
		if key == protocol.KeySASLHandshake {
			return actHandshake
		}
		// A second ApiVersions is an IllegalStateException in Kafka: close.
		return actCloseNow
	case stateAuthenticate, stateReauthenticating:
		if key == protocol.KeySASLAuthenticate {
			return actAuthenticate
		}
		// "Unexpected Kafka request of type X during SASL authentication."
		return actIllegalStateFail
	case stateAuthenticated:
		switch {
		case key == protocol.KeySASLHandshake && canReauth:
			return actHandshake
		case key == protocol.KeySASLHandshake, key == protocol.KeySASLAuthenticate:
			return actAlreadyAuthenticated
		}
		return actNotSASL
	}
	return actCloseNow
}
