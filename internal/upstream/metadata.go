package upstream

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataProbe keeps a Directory complete: it asks the bootstrap servers
// for the broker list every Interval, so brokers that join or leave are
// noticed even when no client asks. Run owns it; not for concurrent use.
type MetadataProbe struct {
	Dial     ConnDialer
	Dir      *Directory
	Interval time.Duration // 0: MetadataInterval
	OnError  func(error)
}

// Refresh asks once and replaces the directory's node set.
func (p *MetadataProbe) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := dialBound(ctx, p.Dial)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(9)
	req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
	resp, err := roundTrip(conn, 1, req)
	if err != nil {
		return fmt.Errorf("probe upstream metadata: %w", err)
	}
	m := resp.(*kmsg.MetadataResponse)
	if err := kerr.ErrorForCode(m.ErrorCode); err != nil {
		return fmt.Errorf("probe upstream metadata: %w", err)
	}
	nodes := map[int32]string{}
	for _, b := range m.Brokers {
		nodes[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	p.Dir.Replace(nodes)
	return nil
}

// Run refreshes until ctx ends.
func (p *MetadataProbe) Run(ctx context.Context) {
	if p.Interval <= 0 {
		p.Interval = MetadataInterval
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if err := p.Refresh(ctx); err != nil && p.OnError != nil && ctx.Err() == nil {
			p.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
