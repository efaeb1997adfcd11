package proxy

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

const leakHost = "upstream-only.internal"

// fetchResponse is a Fetch response with records bytes of records and,
// when leak is set, KIP-951 node endpoints naming the upstream (which kmsg,
// like kfake, encodes at any flexible version: an early tag).
func fetchResponse(version int16, records int, leak bool) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(version)
	tp := kmsg.NewFetchResponseTopic()
	tp.Topic = "t"
	p := kmsg.NewFetchResponseTopicPartition()
	p.HighWatermark = 42
	p.RecordBatches = bytes.Repeat([]byte("r"), records)
	tp.Partitions = append(tp.Partitions, p)
	r.Topics = append(r.Topics, tp)
	if leak {
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port = 0, leakHost, 9092
		r.Brokers = append(r.Brokers, b)
	}
	return r
}

// fetchThrough logs in, makes the upstream answer the next Fetch (v15)
// with resp, sends one, and returns the wire.
func fetchThrough(t *testing.T, resp *kmsg.FetchResponse) (*wire, int32) {
	e := newEnv(t, nil)
	w := e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	e.cluster.ControlKey(1, func(kmsg.Request) (kmsg.Response, error, bool) { return resp, nil, true })
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(resp.Version)
	req.MaxBytes = 50 << 20
	return w, w.Send(req)
}

func TestLargeFetchStreamsByteForByte(t *testing.T) {
	resp := fetchResponse(15, 3<<20, false)
	w, corr := fetchThrough(t, resp)
	got, err := w.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	want := resp.AppendTo([]byte{byte(corr >> 24), byte(corr >> 16), byte(corr >> 8), byte(corr), 0})
	if !bytes.Equal(got, want) {
		t.Fatalf("streamed fetch response differs: %d bytes, want %d", len(got), len(want))
	}
}

// A response too large to hold that carries endpoints below v16 cannot be
// rewritten once its size is sent: the proxy closes before the host.
func TestLargeFetchWithEarlyEndpointsClosesBeforeTheHost(t *testing.T) {
	w, _ := fetchThrough(t, fetchResponse(15, 1<<20, true))
	written, _ := w.ExpectClosed()
	if bytes.Contains(written, []byte(leakHost)) {
		t.Fatal("upstream host reached the client")
	}
	if len(written) < 1<<20-chunkSize { // all but the last chunk, held while scanned
		t.Fatalf("only %d bytes streamed before the close; the records should have flowed", len(written))
	}
}

// A small response with early endpoints (the usual shape: an error, no
// records) is held whole and rewritten.
func TestSmallFetchWithEarlyEndpointsIsRewritten(t *testing.T) {
	resp := fetchResponse(15, 100, true)
	w, corr := fetchThrough(t, resp)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(15)
	got := w.Recv(req, corr).(*kmsg.FetchResponse)
	if len(got.Brokers) != 1 || got.Brokers[0].Host == leakHost {
		t.Fatalf("endpoints not rewritten: %+v", got.Brokers)
	}
}
