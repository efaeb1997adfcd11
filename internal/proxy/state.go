package proxy

import "github.com/scram-proxy/scram-proxy/internal/protocol"

// state is where a connection stands in Kafka's SASL server state machine
// (SaslServerAuthenticator.SaslState).
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
	// stateReauthenticating: a KIP-368 re-authentication is under way.
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

// action is what the gate does with a parsed request in a given state.
type action uint8

const (
	actCloseNow         action = iota // close at once, nothing written
	actApiVersions                    // answer ApiVersions
	actHandshake                      // answer SaslHandshake
	actAuthenticate                   // run a SaslAuthenticate round
	actIllegalStateFail               // that API's error response with 34, then delayed close
)

// preAuthAction is the single allow-list of the SASL gate: which API keys
// are legal before authentication completes, and what happens otherwise.
// It mirrors SaslServerAuthenticator.handleKafkaRequest and friends.
func preAuthAction(s state, key int16) action {
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
	}
	return actCloseNow
}
