package upstream

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
)

// Directory maps upstream node ids to their real addresses, as learned from
// the responses the proxy relays and from its own metadata probes. It is
// safe for concurrent use; Changes signals (without blocking) when a node
// appears or leaves.
type Directory struct {
	mu      sync.RWMutex
	nodes   map[int32]string
	changed chan struct{}
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory {
	return &Directory{nodes: map[int32]string{}, changed: make(chan struct{}, 1)}
}

// Learn records node's upstream address.
func (d *Directory) Learn(node int32, host string, port int32) {
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	d.mu.Lock()
	old, ok := d.nodes[node]
	d.nodes[node] = addr
	d.mu.Unlock()
	if !ok || old != addr {
		d.signal()
	}
}

// Replace sets the whole node set (from a full metadata answer); nodes not
// in it are forgotten.
func (d *Directory) Replace(nodes map[int32]string) {
	d.mu.Lock()
	same := len(nodes) == len(d.nodes)
	for id, a := range nodes {
		if d.nodes[id] != a {
			same = false
		}
	}
	d.nodes = nodes
	d.mu.Unlock()
	if !same {
		d.signal()
	}
}

func (d *Directory) signal() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Changes delivers a value after the node set changed.
func (d *Directory) Changes() <-chan struct{} { return d.changed }

// Addr returns node's upstream address.
func (d *Directory) Addr(node int32) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.nodes[node]
	return a, ok
}

// Nodes lists the known node ids, sorted.
func (d *Directory) Nodes() []int32 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]int32, 0, len(d.nodes))
	for id := range d.nodes {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

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

// Routes turns upstream nodes into client-facing addresses. It implements
// rewrite.AddrMap and records every node it sees in the Directory. Immutable
// apart from the Directory; safe for concurrent use.
type Routes struct {
	Mode Mode
	Dir  *Directory

	// Sidecar: Template with "{id}", and explicit per-node addresses.
	Template string
	Brokers  map[int32]string
	// Port-per-broker: the advertised host, and ports by base or map.
	Host     string
	PortBase int
	Ports    map[int32]int
	// SNI: the host pattern with "{id}" and the listener's port.
	SNIPattern string
	SNIPort    int
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
