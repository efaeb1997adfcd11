package upstream

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

// FuzzSNIRoute matches arbitrary TLS server names against an arbitrary
// routing.sni_host_pattern. A name the pattern routes is the pattern with
// a node id in place of {id}; and the host advertised for any node routes
// back to that node. Patterns NewRoutes refuses are skipped.
func FuzzSNIRoute(f *testing.F) {
	f.Add("b-{id}.kafka.example.com", "b-3.kafka.example.com", uint32(3))
	f.Add("b-{id}.kafka.example.com", "b-.kafka.example.com", uint32(0))
	f.Add("{id}", "2147483648", uint32(2147483647))
	f.Add("b{id}{id}", "b7{id}", uint32(7))
	f.Add("no-id.example.com", "no-id.example.com", uint32(1))
	f.Add("b-{id}.x", "b-+1.x", uint32(1))
	f.Fuzz(func(t *testing.T, pattern, name string, node uint32) {
		r, err := NewRoutes(RoutesOptions{Mode: ModeSNI, SNIPattern: pattern, Advertised: "proxy:9096"})
		if err != nil {
			return
		}
		pre, post, hasID := cutID(pattern)
		if n, ok := r.NodeForSNI(name); ok {
			mid := name[len(pre) : len(name)-len(post)]
			if !hasID || n < 0 || name[:len(pre)] != pre || name[len(name)-len(post):] != post ||
				strconv.FormatUint(uint64(n), 10) != trimZeros(mid) {
				t.Fatalf("pattern %q routed %q to node %d", pattern, name, n)
			}
		}
		id := int32(node & 0x7fffffff)
		host, port, err := r.Advertise(id, "", 0)
		if err != nil || port != 9096 {
			t.Fatalf("node %d advertised as %q port %d: %v", id, host, port, err)
		}
		if got, ok := r.NodeForSNI(host); hasID && (!ok || got != id) {
			t.Fatalf("pattern %q: node %d advertised as %q routes to %d, %v", pattern, id, host, got, ok)
		}
	})
}

// trimZeros drops leading zeros but keeps a lone "0".
func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// pipeDialer answers each dial with one end of a net.Pipe whose other end
// reads one request per reply and answers it with that reply's body under
// the request's correlation id.
type pipeDialer struct{ replies [][]byte }

func (d pipeDialer) Dial(context.Context, string, int32) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		fr := protocol.NewFrameReader(server, 1<<20, nil)
		for _, body := range d.replies {
			req, err := fr.Read()
			if err != nil || len(req) < 8 {
				return
			}
			out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
			out = append(out, req[4:8]...) // correlation id
			if _, err := server.Write(append(out, body...)); err != nil {
				return
			}
		}
	}()
	return client, nil
}

// FuzzProbeResponses answers the proxy's own probes of the upstream
// (ApiVersions, with its retry at a lower version, and the broker-list
// Metadata) with arbitrary response bodies. Nothing may panic or hang; an
// answer the probe accepts is a response without an error code, and the
// directory holds exactly the brokers a Metadata answer lists.
func FuzzProbeResponses(f *testing.F) {
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(av.MaxVersion())
	av.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 3}, {ApiKey: 3, MaxVersion: 12}}
	unsupported := kmsg.NewPtrApiVersionsResponse()
	unsupported.ErrorCode = 35
	unsupported.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 2}}
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(9)
	md.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "b1", Port: 9092}, {NodeID: 2, Host: "::1", Port: 9093}}
	f.Add(av.AppendTo(nil), []byte(nil), md.AppendTo(nil))
	f.Add(unsupported.AppendTo(nil), av.AppendTo(nil), []byte{0, 0, 0, 0})
	f.Add([]byte{0, 35, 0, 0, 0, 1}, []byte{0xff}, []byte{0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, first, second, metadata []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p := NewVersionProbe(pipeDialer{[][]byte{first, second}}, time.Minute, nil)
		if r, err := p.UpstreamVersions(ctx); err == nil && (r == nil || r.ErrorCode != 0) {
			t.Fatalf("accepted %+v", r)
		}
		dir := NewDirectory()
		mp := &MetadataProbe{Dial: pipeDialer{[][]byte{metadata}}, Dir: dir}
		if err := mp.Refresh(ctx); err != nil {
			return
		}
		m := kmsg.NewPtrMetadataResponse()
		m.SetVersion(9)
		hl, err := protocol.ResponseHeaderLen(append([]byte{0, 0, 0, 1}, metadata...), m.Key(), 9)
		if err != nil || m.ReadFrom(metadata[hl-4:]) != nil {
			t.Fatalf("refresh accepted a body that does not decode: %v", err)
		}
		want := map[int32]string{} // the last entry of a node wins
		for _, b := range m.Brokers {
			want[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		}
		if len(dir.Nodes()) != len(want) {
			t.Fatalf("directory holds %d nodes, the answer %d", len(dir.Nodes()), len(want))
		}
		for n, a := range want {
			if got, ok := dir.Addr(n); !ok || got != a {
				t.Fatalf("node %d: directory has %q, %v; want %q", n, got, ok, a)
			}
		}
	})
}
