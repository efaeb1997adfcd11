package protocol

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// goldenFrames loads testdata/*.hex: "name: hex words" per line.
func goldenFrames(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(hx), ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

func TestGoldenRequestHeaders(t *testing.T) {
	g := goldenFrames(t, "testdata/wire-frames.hex")
	for _, tc := range []struct {
		name          string
		key, version  int16
		corr          int32
		flexible      bool
		headerLen     int
		bodyFirstByte byte
	}{
		{"sasl_handshake_v1_request", 17, 1, 1, false, 11, 0x00},
		{"sasl_authenticate_v2_request", 36, 2, 2, true, 12, 0x11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := g[tc.name]
			n, err := checkSize([4]byte(frame[:4]), 1<<20)
			if err != nil || n != len(frame)-4 {
				t.Fatalf("size %d err %v, want %d", n, err, len(frame)-4)
			}
			h, err := ParseRequestHeader(frame[4:])
			if err != nil {
				t.Fatal(err)
			}
			if h.Key != tc.key || h.Version != tc.version || h.CorrelationID != tc.corr ||
				h.Flexible != tc.flexible || h.Len != tc.headerLen || string(h.ClientID) != "c" {
				t.Fatalf("got %+v", h)
			}
			if frame[4+h.Len] != tc.bodyFirstByte {
				t.Fatalf("body starts with %x", frame[4+h.Len])
			}
		})
	}
}

// TestGoldenResponses encodes responses the way the proxy does and compares
// them byte for byte with testdata/wire-frames.hex.
func TestGoldenResponses(t *testing.T) {
	g := goldenFrames(t, "testdata/wire-frames.hex")
	mechs := []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}

	hs := kmsg.NewPtrSASLHandshakeResponse()
	hs.SupportedMechanisms = mechs
	check(t, "sasl_handshake_v1_response_ok", g, AppendResponse(nil, RequestHeader{Key: 17, Version: 1, CorrelationID: 1}, hs))
	hs.ErrorCode = 33
	check(t, "sasl_handshake_v1_response_33", g, AppendResponse(nil, RequestHeader{Key: 17, Version: 1, CorrelationID: 1}, hs))

	auth := kmsg.NewPtrSASLAuthenticateResponse()
	auth.SASLAuthBytes = []byte("v=abc=")
	auth.SessionLifetimeMillis = 3600000
	check(t, "sasl_authenticate_v1_response_ok_nullmsg", g, AppendResponse(nil, RequestHeader{Key: 36, Version: 1, CorrelationID: 2}, auth))

	av := kmsg.NewPtrApiVersionsResponse()
	av.ErrorCode = 35
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = 18, 0, 4
	av.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	check(t, "api_versions_unsupported_v0", g, AppendResponse(nil, RequestHeader{Key: 18, Version: 0}, av))

	// SaslAuthenticate v2 error 58: header v1 (corr + empty tags), compact fields.
	auth = kmsg.NewPtrSASLAuthenticateResponse()
	auth.ErrorCode = 58
	msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
	auth.ErrorMessage = &msg
	auth.SASLAuthBytes = []byte{}
	got := AppendResponse(nil, RequestHeader{Key: 36, Version: 2, CorrelationID: 2}, auth)
	want := append([]byte{0, 0, 0, 0x7a, 0, 0, 0, 2, 0, 0, 0x3a, 0x69}, msg...)
	want = append(want, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00)
	if !bytes.Equal(got, want) {
		t.Fatalf("v2 error 58:\n got %x\nwant %x", got, want)
	}
}

func check(t *testing.T, name string, g map[string][]byte, got []byte) {
	t.Helper()
	if !bytes.Equal(got, g[name]) {
		t.Errorf("%s:\n got %x\nwant %x", name, got, g[name])
	}
}

func TestApiVersionsResponseHeaderAlwaysV0(t *testing.T) {
	for v := int16(0); v <= 5; v++ {
		if ResponseHeaderFlexible(KeyApiVersions, v) {
			t.Fatalf("ApiVersions v%d must use response header v0", v)
		}
	}
	if !Flexible(KeyApiVersions, 3) || Flexible(KeyApiVersions, 2) {
		t.Fatal("ApiVersions requests are flexible from v3")
	}
	// Not capped at kmsg's highest version (docs/protocol.md, "Framing").
	if !Flexible(KeyApiVersions, 99) {
		t.Fatal("versions above kmsg's max stay flexible")
	}
	if Flexible(KeySASLHandshake, 1) || Flexible(KeySASLHandshake, 7) {
		t.Fatal("SaslHandshake is never flexible")
	}
}

func TestParseRequestHeaderErrors(t *testing.T) {
	for name, frame := range map[string][]byte{
		"short":          {0, 18, 0},
		"unknown key":    {0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0},
		"negative ver":   {0, 18, 0xff, 0xff, 0, 0, 0, 1, 0, 0},
		"no client id":   {0, 18, 0, 0, 0, 0, 0, 1},
		"id past end":    {0, 18, 0, 0, 0, 0, 0, 1, 0, 9, 'a'},
		"bad id len":     {0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xfe},
		"missing tags":   {0, 18, 0, 3, 0, 0, 0, 1, 0, 0},
		"tag past end":   {0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 1, 0, 5, 'x'},
		"overlong count": {0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := ParseRequestHeader(frame); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// A null client id and a tag section with one tag.
	h, err := ParseRequestHeader([]byte{0, 18, 0, 3, 0, 0, 0, 7, 0xff, 0xff, 1, 0, 2, 'x', 'y', 0xAB})
	if err != nil || h.ClientID != nil || h.Len != 15 || h.CorrelationID != 7 {
		t.Fatalf("got %+v, %v", h, err)
	}
}

func TestFrameSizeDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		hint string
	}{
		{[]byte{0x16, 0x03, 0x01, 0x02}, "TLS"},
		{[]byte("GET "), "HTTP"},
		{[]byte{0x7f, 0, 0, 0}, ""},
		{[]byte{0xff, 0xff, 0xff, 0xff}, ""},
	} {
		_, err := NewFrameReader(bytes.NewReader(tc.in), 512<<10, nil).Next()
		var fse *FrameSizeError
		if !errors.As(err, &fse) {
			t.Fatalf("%x: err %v", tc.in, err)
		}
		if !strings.Contains(fse.Hint, tc.hint) || (tc.hint == "" && fse.Hint != "") {
			t.Errorf("%x: hint %q, want %q", tc.in, fse.Hint, tc.hint)
		}
	}
	if n, err := NewFrameReader(bytes.NewReader([]byte{0, 0, 0, 0}), 10, nil).Next(); err != nil || n != 0 {
		t.Fatalf("zero-length frame: %d %v", n, err)
	}
}

func TestProduceAcks(t *testing.T) {
	txn := "txn-1"
	for v := int16(0); v <= kmsg.NewPtrProduceRequest().MaxVersion(); v++ {
		for _, acks := range []int16{-1, 0, 1} {
			for _, tid := range []*string{nil, &txn} {
				req := kmsg.NewPtrProduceRequest()
				req.SetVersion(v)
				req.Acks = acks
				req.TransactionID = tid
				var f kmsg.RequestFormatter
				frame := f.AppendRequest(nil, req, 9)[4:]
				h, err := ParseRequestHeader(frame)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := ProduceAcks(v, frame[h.Len:])
				want := acks
				if !ok || got != want {
					t.Fatalf("v%d acks=%d tid=%v: got %d ok=%v", v, acks, tid != nil, got, ok)
				}
			}
		}
	}
	if _, ok := ProduceAcks(3, []byte{0, 9, 'x'}); ok {
		t.Fatal("truncated body parsed")
	}
}

func TestLooksLikeKafkaRequest(t *testing.T) {
	var f kmsg.RequestFormatter
	frame := f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1)
	if !LooksLikeKafkaRequest(frame[:5]) || !LooksLikeKafkaRequest(frame) {
		t.Fatal("an ApiVersions request must look like Kafka")
	}
	if LooksLikeKafkaRequest([]byte("GET / HTTP/1.1")) {
		t.Fatal("HTTP is not Kafka")
	}
}

func TestKeyConstantsMatchKmsg(t *testing.T) {
	for got, want := range map[int16]kmsg.Key{
		KeyProduce: kmsg.Produce, KeyFetch: kmsg.Fetch, KeyMetadata: kmsg.Metadata,
		KeyFindCoordinator: kmsg.FindCoordinator, KeySASLHandshake: kmsg.SASLHandshake,
		KeyApiVersions: kmsg.ApiVersions, KeySASLAuthenticate: kmsg.SASLAuthenticate,
		KeyCreateDelegationToken: kmsg.CreateDelegationToken, KeyRenewDelegationToken: kmsg.RenewDelegationToken,
		KeyExpireDelegationToken: kmsg.ExpireDelegationToken, KeyDescribeDelegationToken: kmsg.DescribeDelegationToken,
		KeyDescribeUserSCRAMCredentials: kmsg.DescribeUserSCRAMCredentials,
		KeyAlterUserSCRAMCredentials:    kmsg.AlterUserSCRAMCredentials, KeyDescribeCluster: kmsg.DescribeCluster,
	} {
		if got != int16(want) {
			t.Errorf("%s: constant %d, kmsg %d", kmsg.NameForKey(int16(want)), got, want)
		}
	}
}

func TestNamesTopics(t *testing.T) {
	frame := func(req kmsg.Request, v int16) []byte {
		req.SetVersion(v)
		return kmsg.NewRequestFormatter(kmsg.FormatterClientID("client")).AppendRequest(nil, req, 7)[4:]
	}
	for _, v := range []int16{0, 1, 4, 8, 9, 12, 13} {
		all := kmsg.NewPtrMetadataRequest()
		if v == 0 {
			all.Topics = []kmsg.MetadataRequestTopic{} // v0's "all"
		}
		if NamesTopics(frame(all, v)) {
			t.Errorf("metadata v%d for all topics counted as named", v)
		}
		named := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("orders")
		named.Topics = append(named.Topics, rt)
		if !NamesTopics(frame(named, v)) {
			t.Errorf("metadata v%d naming a topic not counted as named", v)
		}
	}
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	if NamesTopics(frame(dtp, 0)) {
		t.Error("DescribeTopicPartitions for all topics counted as named")
	}
	rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rt.Topic = "orders"
	dtp.Topics = append(dtp.Topics, rt)
	if !NamesTopics(frame(dtp, 0)) {
		t.Error("DescribeTopicPartitions naming a topic not counted as named")
	}
	if NamesTopics(frame(kmsg.NewPtrListGroupsRequest(), 3)) || NamesTopics([]byte{0, 3}) {
		t.Error("another request, or a short frame, counted as named")
	}
}
