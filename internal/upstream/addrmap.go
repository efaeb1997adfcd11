package upstream

import (
	"fmt"
	"net"
	"strconv"
)

// FixedAddr advertises every upstream broker at one address: the proxy's
// own. Exact when the proxy fronts a single broker (the sidecar case).
// Immutable and safe for concurrent use.
type FixedAddr struct {
	host string
	port int32
}

// NewFixedAddr parses hostport ("broker-0.kafka.svc:9096").
func NewFixedAddr(hostport string) (*FixedAddr, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("advertised address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 || host == "" {
		return nil, fmt.Errorf("advertised address %q: need a host and a port 1-65535", hostport)
	}
	return &FixedAddr{host: host, port: int32(port)}, nil
}

// Advertise returns the fixed address for every node.
func (f *FixedAddr) Advertise(int32, string, int32) (string, int32, error) {
	return f.host, f.port, nil
}
