package upstream

import (
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

// Hosts lists the hosts of the known nodes' upstream addresses.
func (d *Directory) Hosts() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.nodes))
	for _, a := range d.nodes {
		if h, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, h)
		}
	}
	return out
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
