package upstream

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Mode is how clients reach each broker through the proxy.
type Mode string

// The routing modes (routing.mode).
const (
	// ModeSidecar: one proxy per broker, forwarding to its local broker;
	// node N is advertised by template or explicit map.
	ModeSidecar Mode = "sidecar"
	// ModePortPerBroker: one proxy, one listener per broker.
	ModePortPerBroker Mode = "port-per-broker"
	// ModeSNI: one TLS port; the server name picks the broker.
	ModeSNI Mode = "sni"
)

// MetadataInterval is how often the broker set is refreshed in the modes
// that dial brokers by node id (MetadataProbe), and how often port-per-broker
// listeners are re-synced with it even without a change signal.
const MetadataInterval = 10 * time.Second

// Routes is the routing-mode strategy: it turns upstream nodes into
// client-facing addresses, and answers the questions that differ by mode
// (where upstream connections go, whether the broker set must be tracked,
// whether brokers get their own listeners, how a TLS server name picks a
// broker). It implements rewrite.AddrMap and records every node it sees in
// the Directory. Immutable apart from the Directory; safe for concurrent
// use.
type Routes struct {
	Mode Mode
	Dir  *Directory
	// Bootstrap is upstream.bootstrap_servers: their hosts, with the
	// directory's, are what UpstreamHosts reports.
	Bootstrap []string

	// Sidecar: Template with "{id}", and explicit per-node addresses.
	Template string
	Brokers  map[int32]string
	// Port-per-broker: the advertised host, and ports by base or map;
	// ListenHost is the host the broker listeners bind to.
	Host       string
	PortBase   int
	Ports      map[int32]int
	ListenHost string
	// SNI: the host pattern with "{id}" and the listener's port.
	SNIPattern string
	SNIPort    int
}

// RoutesOptions configures NewRoutes: the routing.* keys, node-id maps
// already parsed, and the listener's addresses.
type RoutesOptions struct {
	Mode       Mode
	Dir        *Directory
	Bootstrap  []string // upstream.bootstrap_servers (for UpstreamHosts)
	Template   string
	Brokers    map[int32]string
	Host       string
	PortBase   int
	Ports      map[int32]int
	SNIPattern string
	// Listen is the client listener's bind address (port-per-broker
	// listeners bind to its host); Advertised is what clients are told
	// (sidecar's address for every node when neither Template nor Brokers
	// names one; the port SNI advertises).
	Listen     string
	Advertised string
}

// NewRoutes builds the strategy for o.Mode.
func NewRoutes(o RoutesOptions) (*Routes, error) {
	r := &Routes{Mode: o.Mode, Dir: o.Dir, Bootstrap: o.Bootstrap, Template: o.Template, Brokers: o.Brokers, Host: o.Host,
		PortBase: o.PortBase, Ports: o.Ports, SNIPattern: o.SNIPattern}
	switch o.Mode {
	case ModeSidecar:
		if r.Template == "" && len(r.Brokers) == 0 {
			r.Template = o.Advertised // one broker behind the proxy
		}
	case ModePortPerBroker:
		host, _, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("routing: listener address: %w", err)
		}
		r.ListenHost = host
	case ModeSNI:
		if err := checkSNIPattern(o.SNIPattern); err != nil {
			return nil, err
		}
		_, port, err := net.SplitHostPort(o.Advertised)
		if err != nil {
			return nil, fmt.Errorf("routing: advertised address: %w", err)
		}
		if r.SNIPort, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("routing: advertised port %q: %w", port, err)
		}
	default:
		return nil, fmt.Errorf("routing: unknown mode %q", o.Mode)
	}
	return r, nil
}

// DialsLocal reports that every upstream connection goes to the bootstrap
// servers whatever node a client targets: the sidecar's local broker.
func (r *Routes) DialsLocal() bool { return r.Mode == ModeSidecar }

// TracksBrokers reports that upstream connections are dialled by node id,
// so the Directory must be kept complete (MetadataProbe) even when no
// client asks for metadata.
func (r *Routes) TracksBrokers() bool { return r.Mode != ModeSidecar }

// BrokerListeners reports that each broker gets its own client listener
// (port-per-broker), opened at ListenAddr as brokers appear.
func (r *Routes) BrokerListeners() bool { return r.Mode == ModePortPerBroker }

// ListenAddr is where node's own listener binds (port-per-broker).
func (r *Routes) ListenAddr(node int32) (string, error) {
	addr, err := r.AddrFor(node)
	if err != nil {
		return "", err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(r.ListenHost, port), nil
}

// SNIRouter returns how a TLS server name picks a broker in SNI mode, and
// nil in the other modes.
func (r *Routes) SNIRouter() func(serverName string) (node int32, ok bool) {
	if r.Mode != ModeSNI {
		return nil
	}
	return r.NodeForSNI
}

// Advertise implements rewrite.AddrMap. A node with no address is an error:
// the response is refused rather than leak the upstream's.
func (r *Routes) Advertise(node int32, host string, port int32) (string, int32, error) {
	if r.Dir != nil && host != "" {
		r.Dir.Learn(node, host, port)
	}
	addr, err := r.AddrFor(node)
	if err != nil {
		return "", 0, err
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	pn, _ := strconv.Atoi(p)
	return h, int32(pn), nil
}

// UpstreamHosts implements rewrite.AddrMap: the hosts of the bootstrap
// servers and of every broker the directory has seen.
func (r *Routes) UpstreamHosts() []string {
	var out []string
	for _, a := range r.Bootstrap {
		if h, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, h)
		}
	}
	if r.Dir != nil {
		out = append(out, r.Dir.Hosts()...)
	}
	return out
}

// AddrFor is node's client-facing host:port.
func (r *Routes) AddrFor(node int32) (string, error) {
	id := strconv.Itoa(int(node))
	switch r.Mode {
	case ModePortPerBroker:
		port, ok := r.Ports[node]
		if !ok {
			if r.PortBase <= 0 {
				return "", fmt.Errorf("node %d has no port (routing.broker_ports)", node)
			}
			port = r.PortBase + int(node)
		}
		if port <= 0 || port > 65535 {
			return "", fmt.Errorf("node %d maps to invalid port %d", node, port)
		}
		return net.JoinHostPort(r.Host, strconv.Itoa(port)), nil
	case ModeSNI:
		return net.JoinHostPort(replaceID(r.SNIPattern, id), strconv.Itoa(r.SNIPort)), nil
	default:
		if a, ok := r.Brokers[node]; ok {
			return a, nil
		}
		if r.Template == "" {
			return "", fmt.Errorf("node %d has no advertised address (routing.brokers or routing.advertised_address_template)", node)
		}
		return replaceID(r.Template, id), nil
	}
}

// NodeForSNI maps a TLS server name to a node in SNI mode.
func (r *Routes) NodeForSNI(name string) (int32, bool) {
	pre, post, ok := cutID(r.SNIPattern)
	if !ok || len(name) <= len(pre)+len(post) || name[:len(pre)] != pre || name[len(name)-len(post):] != post {
		return 0, false
	}
	n, err := strconv.ParseUint(name[len(pre):len(name)-len(post)], 10, 31)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// checkSNIPattern accepts a pattern that names a DNS host once {id} is
// replaced: a TLS client sends the advertised name as its server name, so
// it must be a host name (letters, digits, '-', '.'), not an address.
func checkSNIPattern(pattern string) error {
	if _, _, ok := cutID(pattern); !ok {
		return fmt.Errorf("routing: sni host pattern %q has no {id}", pattern)
	}
	for _, c := range replaceID(pattern, "0") {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("routing: sni host pattern %q is not a host name with {id} in it", pattern)
		}
	}
	return nil
}

func cutID(pattern string) (pre, post string, ok bool) {
	for i := 0; i+4 <= len(pattern); i++ {
		if pattern[i:i+4] == "{id}" {
			return pattern[:i], pattern[i+4:], true
		}
	}
	return "", "", false
}

func replaceID(pattern, id string) string {
	pre, post, ok := cutID(pattern)
	if !ok {
		return pattern
	}
	return pre + id + post
}
