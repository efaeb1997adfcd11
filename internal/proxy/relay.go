package proxy

// The relay: two goroutines per authenticated connection. The reader
// (relay_reader.go) runs every request through the pipeline of stages
// (pipeline.go) and queues one pending entry per expected response; the
// writer (relay_writer.go) answers the queue in order.

import (
	"context"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
)

// chunkSize is the relay's copy unit. Frames are streamed through pooled
// chunks, so an idle connection holds no buffer and a 50 MiB fetch response
// never sits whole in memory. A chunk holds a frame's size prefix and its
// first chunkSize-4 bytes, or a later part of the frame.
const chunkSize = 64 << 10

// maxResponseSize bounds upstream response frames (the upstream is trusted
// more than a client, but a corrupt size must not allocate gigabytes).
const maxResponseSize = 1 << 30

// pending is one expected response, queued in request order. Kafka clients
// require responses in request order (Java's InFlightRequests.completeNext),
// so local answers wait their turn behind the upstream's.
type pending struct {
	corr         int32
	key, version int16
	local        []byte                            // a complete frame built by the proxy; nil: the upstream answers
	rewrite      bool                              // decode and rewrite the upstream's answer
	scan         func(rewrite.Source, int16) error // stream the answer through this check
	req          rewrite.Request                   // what the rewrite needs to know of the request
	closeAfter   closeReason                       // close the connection once local (if any) is written
	delay        bool                              // wait the failed-auth delay before writing local
	start        time.Time                         // when the request was read, for latency
	// reauth, when set, asks the writer to re-authenticate the upstream
	// connection (nothing is in flight once it gets here) and report.
	reauth chan error
}

// upstreamSession is implemented by upstream connections whose broker
// session expires (KIP-368, client side): the relay re-authenticates them
// in-band, between requests.
type upstreamSession interface {
	ReauthAt() time.Time
	Reauthenticate(ctx context.Context) error
}

// fromUpstream reports whether the upstream owes this response.
func (p pending) fromUpstream() bool { return p.local == nil && p.closeAfter == "" && p.reauth == nil }

// relay moves frames both ways until either side ends. The reader (this
// goroutine) forwards requests and queues what each expects back; the writer
// goroutine answers the queue in order. Both the upstream connection and the
// writer start with the first request that needs them. A client EOF or a
// shutdown drain stops the reader at a frame boundary and lets the writer
// deliver every response still owed; any other failure aborts both
// directions.
func (s *session) relay(ctx, drain context.Context) closeReason {
	stopHard := context.AfterFunc(ctx, func() { _ = s.raw.SetDeadline(time.Unix(1, 0)) })
	defer stopHard()
	stopDrain := context.AfterFunc(drain, func() { _ = s.raw.SetReadDeadline(time.Unix(1, 0)) })
	defer stopDrain()
	reason := s.readLoop(ctx, drain)
	if s.writerDone == nil {
		if s.up != nil {
			_ = s.up.Close()
		}
		return reason
	}
	close(s.queue)
	// After a client EOF or a drain the writer still delivers what is owed
	// (the upstream is not half-closed: Kafka closes on EOF and would drop
	// those responses). Any other end aborts the writer, which may be
	// waiting on the upstream.
	if s.up != nil && reason != reasonClientClosed && reason != reasonShutdown && reason != reasonAuthFailed {
		_ = s.up.SetDeadline(time.Unix(1, 0))
	}
	wreason := <-s.writerDone
	if s.up != nil {
		s.stopUp()
		_ = s.up.Close()
	}
	if wreason != "" {
		return wreason
	}
	return reason
}

// push queues an expected response, starting the writer on first use. The
// queue (MaxInFlight entries, 25 KiB at the default) is made then too, so a
// connection that only logs in does not pay for it.
func (s *session) push(p pending) {
	if s.writerDone == nil {
		s.queue = make(chan pending, s.srv.opts.MaxInFlight)
		s.writerDone = make(chan closeReason, 1)
		s.writerGone = make(chan struct{})
		go func() { defer close(s.writerGone); s.writerDone <- s.writeLoop(s.queue) }()
	}
	s.queue <- p
}
