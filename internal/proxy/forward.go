package proxy

// The pipeline's last stage: forward a request to the upstream, streaming
// it chunk by chunk, after queueing what its response needs.

import (
	"context"
	"io"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// forward sends every request that reaches it to the upstream broker.
type forward struct{}

func (forward) serve(s *session, r *request) (bool, closeReason) {
	o := &s.srv.opts
	up, reason := s.upstream(r.ctx)
	if reason != "" {
		return false, reason
	}
	if us, ok := up.(upstreamSession); ok && o.Now().After(us.ReauthAt()) {
		if reason := s.reauthUpstream(); reason != "" {
			return false, reason
		}
	}
	// The table was loaded when the relay started and is refreshed by every
	// new connection; the hot path only loads the pointer.
	table := s.srv.versions.cur.Load()
	if !table.allowed(r.key, r.version) {
		s.log.Info("request for an api or version the proxy does not advertise; closing",
			zap.Int16(logAPIKey, r.key), zap.Int16(logAPIVersion, r.version))
		return false, reasonProtocol
	}
	expect := true
	if r.key == protocol.KeyProduce {
		acks, reason := s.produceAcks(r.head, r.size)
		if reason != "" {
			return false, reason
		}
		expect = acks != 0 // acks=0: Kafka sends no response at all
	}
	if expect {
		p := pending{corr: r.corr, key: r.key, version: r.version, start: o.Now(),
			rewrite: r.key == protocol.KeyApiVersions || o.Registry.NeedsRewrite(r.key, r.version),
			scan:    o.Registry.Scanner(r.key, r.version)}
		if p.rewrite && (r.key == protocol.KeyMetadata || r.key == protocol.KeyDescribeTopicPartitions) {
			p.req.NamesTopics = protocol.NamesTopics(r.head)
		}
		s.push(p)
	}

	_ = up.SetWriteDeadline(o.Now().Add(o.IdleTimeout))
	if _, err := up.Write(r.chunk[:4+len(r.head)]); err != nil {
		return false, s.upstreamFailed("write", err)
	}
	buf := r.chunk
	for rest := r.size - len(r.head); rest > 0; {
		k := min(rest, len(buf))
		if _, err := io.ReadFull(r.body, buf[:k]); err != nil {
			return false, s.clientReadReason(r.drain, err, false)
		}
		if _, err := up.Write(buf[:k]); err != nil {
			return false, s.upstreamFailed("write", err)
		}
		rest -= k
	}
	return false, ""
}

// upstream returns the upstream connection, dialing it on first use. The
// writer reads s.up only for entries queued after this returns.
func (s *session) upstream(ctx context.Context) (net.Conn, closeReason) {
	if s.up != nil {
		return s.up, ""
	}
	o := &s.srv.opts
	var tokenID string
	if s.result.TokenAuthenticated {
		tokenID = s.result.Username
	}
	up, err := o.Upstream.DialClient(ctx, s.principal, tokenID, s.node)
	if err != nil {
		o.Metrics.UpstreamDialFailed()
		s.log.Warn("upstream dial failed", zap.Int32("node", s.node), zap.Error(err))
		return nil, reasonUpstreamDial
	}
	s.up = up
	s.stopUp = context.AfterFunc(ctx, func() { _ = up.SetDeadline(time.Unix(1, 0)) })
	return up, ""
}

// reauthUpstream re-authenticates the upstream connection before the
// request about to be forwarded: the writer does it when every earlier
// response has been delivered, while this reader waits, so the exchange
// never interleaves with client traffic.
func (s *session) reauthUpstream() closeReason {
	done := make(chan error, 1)
	s.push(pending{reauth: done})
	select {
	case err := <-done:
		if err != nil {
			return reasonUpstreamClosed
		}
		s.log.Info("upstream re-authenticated")
		return ""
	case <-s.writerGone:
		return reasonUpstreamClosed
	}
}

// produceAcks reads acks from a Produce request whose first bytes are in
// head. A request whose header and transactional id do not fit in the first
// chunk (64 KiB with the size prefix) is refused: the relay cannot tell
// whether it expects a response (listed in docs/unsupported.md).
func (s *session) produceAcks(head []byte, n int) (int16, closeReason) {
	if h, err := protocol.ParseRequestHeader(head); err == nil {
		if acks, ok := protocol.ProduceAcks(h.Version, head[h.Len:]); ok {
			return acks, ""
		}
	}
	s.log.Info("produce request header unreadable", zap.Int("head", len(head)), zap.Int("size", n))
	return 0, reasonProtocol
}
