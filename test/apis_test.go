package test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestBrokerOnlyAPIsAreNotOffered: kfake, like a real broker, advertises
// WriteTxnMarkers, an API only transaction coordinators send. Through the
// proxy it must not be advertised, and a client that sends it anyway is
// treated like any client asking for an API the proxy does not offer (the
// connection closes, nothing is forwarded).
func TestBrokerOnlyAPIsAreNotOffered(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"txn"}})
	w := dialTLS(t, e)
	if r := w.Login(sasl.ScramSHA512, "alice", testUsers["alice"], 1); r.ErrorCode != 0 {
		t.Fatalf("login: %d", r.ErrorCode)
	}

	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "test", "1"
	resp := w.RoundTrip(av).(*kmsg.ApiVersionsResponse)
	offered := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		offered[k.ApiKey] = true
	}
	if !offered[0] || !offered[1] {
		t.Fatalf("Produce/Fetch not offered: %+v", resp.ApiKeys)
	}
	for _, k := range []int16{4, 5, 6, 7, 27, 56, 58, 62, 63, 67, 70, 73, 83, 84, 85, 86, 87} {
		if offered[k] {
			t.Errorf("%s (key %d) offered to a client", kmsg.NameForKey(k), k)
		}
	}

	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.SetVersion(1)
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = 1, 0, true
	topic := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	topic.Topic, topic.Partitions = "txn", []int32{0}
	m.Topics = append(m.Topics, topic)
	req.Markers = append(req.Markers, m)
	w.Send(req)
	if b, _ := w.ExpectClosed(); len(b) != 0 {
		t.Fatalf("WriteTxnMarkers was answered (%d bytes): it reached the upstream", len(b))
	}
}
