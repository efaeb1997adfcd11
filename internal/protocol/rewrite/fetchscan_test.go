package rewrite

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchFrame encodes resp as a whole response frame after the size: the
// correlation id, an empty header tag section, the body.
func fetchFrame(resp *kmsg.FetchResponse) []byte {
	return resp.AppendTo([]byte{0, 0, 0, 7, 0})
}

// busyFetch is a response using every part of the schema: topics by name
// and id, aborted transactions, records, partition and unknown tags.
func busyFetch(version int16) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(version)
	r.ThrottleMillis, r.SessionID = 3, 99
	for ti := 0; ti < 2; ti++ {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = "topic-" + string(rune('a'+ti))
		t.TopicID = [16]byte{byte(ti + 1)}
		for pi := 0; pi < 3; pi++ {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(pi)
			p.HighWatermark = 1 << 40
			if pi == 1 {
				a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				a.ProducerID, a.FirstOffset = 5, 6
				p.AbortedTransactions = append(p.AbortedTransactions, a)
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, 9 // partition tag 1
			}
			p.RecordBatches = bytes.Repeat([]byte{byte(pi)}, 300*(pi+1))
			p.UnknownTags.Set(7, []byte("x"))
			t.Partitions = append(t.Partitions, p)
		}
		r.Topics = append(r.Topics, t)
	}
	r.UnknownTags.Set(5, []byte("future top-level tag"))
	return r
}

func TestScanFetchReadsEveryFlexibleVersionExactly(t *testing.T) {
	for v := int16(12); v <= 15; v++ {
		frame := fetchFrame(busyFetch(v))
		src := &SliceSource{B: frame}
		if err := ScanFetch(src, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if len(src.B) != 0 {
			t.Fatalf("v%d: %d bytes left unread", v, len(src.B))
		}
		// Every truncation fails; none panics or reads past the end.
		for cut := 0; cut < len(frame); cut += 7 {
			if err := ScanFetch(&SliceSource{B: frame[:cut]}, v); err == nil {
				t.Fatalf("v%d cut at %d of %d: no error", v, cut, len(frame))
			}
		}
	}
	if err := ScanFetch(&SliceSource{}, 16); err == nil {
		t.Fatal("v16 scanned; it may carry endpoints legitimately and must be rewritten whole")
	}
}

// positionSource records how far ScanFetch read.
type positionSource struct {
	SliceSource
	read int
}

func (p *positionSource) Next(n int) ([]byte, error) { p.read += n; return p.SliceSource.Next(n) }
func (p *positionSource) Skip(n int) error           { p.read += n; return p.SliceSource.Skip(n) }

// A v16 body with node endpoints is a v15 body plus top-level tag 0: an
// upstream sending it at v15 is caught before the host is read.
func TestScanFetchStopsAtNodeEndpointsBeforeTheHost(t *testing.T) {
	r := busyFetch(16)
	b := kmsg.NewFetchResponseBroker()
	b.NodeID, b.Host, b.Port = 1, "upstream-broker.internal", 9092
	r.Brokers = append(r.Brokers, b)
	frame := fetchFrame(r)
	src := &positionSource{SliceSource: SliceSource{B: frame}}
	err := ScanFetch(src, 15)
	if !errors.Is(err, ErrFetchEndpoints) {
		t.Fatalf("err %v, want ErrFetchEndpoints", err)
	}
	if host := bytes.Index(frame, []byte(b.Host)); src.read > host {
		t.Fatalf("read %d bytes, past the host at %d", src.read, host)
	}
}

func FuzzScanFetch(f *testing.F) {
	for v := int16(12); v <= 15; v++ {
		f.Add(v, fetchFrame(busyFetch(v)))
	}
	withEndpoints := busyFetch(16)
	withEndpoints.Brokers = append(withEndpoints.Brokers, kmsg.NewFetchResponseBroker())
	f.Add(int16(15), fetchFrame(withEndpoints))
	f.Fuzz(func(t *testing.T, version int16, frame []byte) {
		version = 12 + int16(uint16(version)%4)
		err := ScanFetch(&SliceSource{B: frame}, version)
		if err != nil && !errors.Is(err, ErrFetchEndpoints) {
			return // malformed; kmsg is no oracle here (huge counts make it crawl)
		}
		// What the scanner accepts or refuses as endpoints, kmsg must read
		// the same way (the other direction: TestScanFetchRandomShapes).
		if len(frame) < 5 || frame[4] != 0 {
			return // kmsg decodes bodies; keep to frames with an empty header tag section
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(version)
		if resp.ReadFrom(frame[5:]) != nil {
			return // stricter than the scanner about tag contents
		}
		if hasEndpoints := len(resp.Brokers) > 0; hasEndpoints != (err != nil) {
			t.Fatalf("kmsg sees endpoints %v, the scan returned %v", hasEndpoints, err)
		}
	})
}

// TestScanFetchRandomShapes: every response kmsg encodes at v12-v15, of
// any shape, scans cleanly to its last byte.
func TestScanFetchRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		v := int16(12 + rng.IntN(4))
		r := kmsg.NewPtrFetchResponse()
		r.SetVersion(v)
		r.ErrorCode = int16(rng.IntN(3))
		for range rng.IntN(4) {
			tp := kmsg.NewFetchResponseTopic()
			tp.Topic = strings.Repeat("t", rng.IntN(200))
			for range rng.IntN(5) {
				p := kmsg.NewFetchResponseTopicPartition()
				for range rng.IntN(3) {
					p.AbortedTransactions = append(p.AbortedTransactions, kmsg.NewFetchResponseTopicPartitionAbortedTransaction())
				}
				if rng.IntN(2) == 0 {
					p.RecordBatches = make([]byte, rng.IntN(20000))
				}
				if rng.IntN(3) == 0 {
					p.DivergingEpoch.Epoch = 4
				}
				if rng.IntN(3) == 0 {
					p.SnapshotID.Epoch = 2
				}
				tp.Partitions = append(tp.Partitions, p)
			}
			r.Topics = append(r.Topics, tp)
		}
		for range rng.IntN(3) {
			r.UnknownTags.Set(uint32(1+rng.IntN(200)), make([]byte, rng.IntN(300)))
		}
		frame := fetchFrame(r)
		src := &SliceSource{B: frame}
		if err := ScanFetch(src, v); err != nil || len(src.B) != 0 {
			t.Fatalf("shape %d (v%d): %v, %d bytes left", i, v, err, len(src.B))
		}
	}
}

// SliceSource is a Source over a byte slice.
type SliceSource struct{ B []byte }

func (s *SliceSource) Next(n int) ([]byte, error) {
	if len(s.B) < n {
		return nil, errTruncated
	}
	b := s.B[:n]
	s.B = s.B[n:]
	return b, nil
}

func (s *SliceSource) Skip(n int) error {
	if len(s.B) < n {
		return errTruncated
	}
	s.B = s.B[n:]
	return nil
}

var errTruncated = errors.New("scan fetch: response ends early")
