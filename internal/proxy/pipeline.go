package proxy

// After authentication every request passes an ordered list of stages; a
// new concern (authorization, say) is one more type implementing stage and
// one more entry in newPipeline, not edits across the relay.

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// A stage is one step of the pipeline. serve either deals with the request
// (answers or forwards it, or ends the connection: reason) or passes it to
// the next stage (pass). Stages run on the reader goroutine and may use the
// session's state.
type stage interface {
	serve(s *session, r *request) (pass bool, reason closeReason)
}

// newPipeline lists the stages in the order every request meets them.
func newPipeline() []stage {
	return []stage{
		sessionDeadline{}, // KIP-368: an expired session ends here
		saslStage{},       // re-authentication, and SASL requests on an authenticated connection
		localAPIs{},       // the APIs the proxy answers itself
		protectedTopics{}, // writes to the topics the proxy keeps for itself, refused
		// Authorization will go here: it sees every request the proxy
		// does not answer itself, before it leaves for the upstream.
		forward{}, // everything else, to the upstream; never passes
	}
}

// request is one client request on its way through the pipeline. Its
// first bytes are in head; whole reads the rest, forward streams it. Its
// slices are valid until the request is dealt with.
type request struct {
	key, version int16
	corr         int32
	size         int       // frame length after the size prefix
	chunk        []byte    // a pooled chunk: the size prefix, then head
	head         []byte    // the first min(size, chunkSize-4) bytes of the frame
	body         io.Reader // the rest of the frame, from the client
	ctx, drain   context.Context
}

// whole returns the complete frame (after the size prefix).
func (r *request) whole(s *session) ([]byte, closeReason) {
	frame := make([]byte, r.size)
	copy(frame, r.head)
	if _, err := io.ReadFull(r.body, frame[len(r.head):]); err != nil {
		return nil, s.clientReadReason(r.drain, err, false)
	}
	return frame, ""
}

// sessionDeadline closes an expired session on its next request, unless
// that request starts or continues a re-authentication (KIP-368,
// SocketServer.processCompletedReceives).
type sessionDeadline struct{}

func (sessionDeadline) serve(s *session, r *request) (bool, closeReason) {
	if s.deadline.IsZero() || r.key == protocol.KeySASLHandshake || s.state == stateReauthenticating ||
		!s.srv.opts.Now().After(s.deadline) {
		return true, ""
	}
	s.log.Info("session expired; closing on next request")
	return false, reasonSessionExpired
}

// saslStage runs the SASL machine for what is its (saslAction): every
// request while re-authenticating, SaslHandshake and SaslAuthenticate
// otherwise. Its replies wait behind the responses still owed.
type saslStage struct{}

func (saslStage) serve(s *session, r *request) (bool, closeReason) {
	if saslAction(s.state, r.key, s.canReauthenticate()) == actNotSASL {
		return true, ""
	}
	frame, reason := r.whole(s)
	if reason != "" {
		return false, reason
	}
	h, err := protocol.ParseRequestHeader(frame)
	if err != nil {
		s.log.Info("unparseable request", zap.Error(err))
		return false, reasonProtocol
	}
	return false, s.queueReply(s.saslRequest(r.ctx, h, frame))
}

// queueReply queues a reply of the SASL machine behind the responses still
// owed and returns its close reason: the reader stops there, and the writer
// delivers what is owed, then the reply.
func (s *session) queueReply(r reply) closeReason {
	if r.resp != nil || r.delay {
		s.push(pending{local: r.resp, closeAfter: r.close, delay: r.delay})
	}
	return r.close
}
