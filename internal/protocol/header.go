package protocol

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Key aliases for the APIs the proxy treats specially or answers itself.
const (
	KeyProduce                      int16 = 0
	KeyFetch                        int16 = 1
	KeyMetadata                     int16 = 3
	KeyFindCoordinator              int16 = 10
	KeySASLHandshake                int16 = 17
	KeyApiVersions                  int16 = 18
	KeySASLAuthenticate             int16 = 36
	KeyCreateDelegationToken        int16 = 38
	KeyRenewDelegationToken         int16 = 39
	KeyExpireDelegationToken        int16 = 40
	KeyDescribeDelegationToken      int16 = 41
	KeyDescribeUserSCRAMCredentials int16 = 50
	KeyAlterUserSCRAMCredentials    int16 = 51
	KeyDescribeCluster              int16 = 60
)

// RequestHeader is a parsed Kafka request header (v1, or v2 when the API
// version is flexible). ClientID aliases the frame it was parsed from.
type RequestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      []byte // nil for a null client id (Kafka treats it as "")
	Flexible      bool
	// Len is the header's length in bytes: the body starts at frame[Len:].
	Len int
}

// HeaderError is a request header that cannot be parsed.
type HeaderError struct{ Reason string }

func (e *HeaderError) Error() string { return "invalid request header: " + e.Reason }

// PeekHeader reads key, version and correlation id, the first 8 bytes of any
// request, without judging them.
func PeekHeader(frame []byte) (key, version int16, corr int32, ok bool) {
	if len(frame) < 8 {
		return 0, 0, 0, false
	}
	return int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:])),
		int32(binary.BigEndian.Uint32(frame[4:])), true
}

// ParseRequestHeader parses the header at the start of frame (the bytes after
// the size prefix). The API key must be one kmsg knows, since header v2 is
// chosen by the (key, version) pair; the version is not judged here beyond
// being non-negative. The client id is never compact, even in header v2.
func ParseRequestHeader(frame []byte) (RequestHeader, error) {
	key, version, corr, ok := PeekHeader(frame)
	if !ok {
		return RequestHeader{}, &HeaderError{"shorter than 8 bytes"}
	}
	if !KnownKey(key) {
		return RequestHeader{}, &HeaderError{fmt.Sprintf("unknown api key %d", key)}
	}
	if version < 0 {
		return RequestHeader{}, &HeaderError{fmt.Sprintf("negative version %d", version)}
	}
	h := RequestHeader{Key: key, Version: version, CorrelationID: corr, Flexible: Flexible(key, version)}
	rest := frame[8:]
	if len(rest) < 2 {
		return RequestHeader{}, &HeaderError{"missing client id"}
	}
	idLen := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	switch {
	case idLen == -1:
	case idLen < -1:
		return RequestHeader{}, &HeaderError{"negative client id length"}
	case int(idLen) > len(rest):
		return RequestHeader{}, &HeaderError{"client id past end of frame"}
	default:
		h.ClientID = rest[:idLen]
		rest = rest[idLen:]
	}
	if h.Flexible {
		n, err := skipTags(rest)
		if err != nil {
			return RequestHeader{}, err
		}
		rest = rest[n:]
	}
	h.Len = len(frame) - len(rest)
	return h, nil
}

// skipTags skips a tagged-field section and returns its length in bytes.
func skipTags(b []byte) (int, error) {
	count, n := uvarint(b)
	if n <= 0 {
		return 0, &HeaderError{"bad tag count"}
	}
	off := n
	for i := uint32(0); i < count; i++ {
		_, n = uvarint(b[off:])
		if n <= 0 {
			return 0, &HeaderError{"bad tag key"}
		}
		off += n
		size, n := uvarint(b[off:])
		if n <= 0 || uint64(size) > uint64(len(b)-off-n) {
			return 0, &HeaderError{"bad tag size"}
		}
		off += n + int(size)
	}
	return off, nil
}

// uvarint decodes a Kafka unsigned varint (at most 5 bytes); n <= 0 on error.
func uvarint(b []byte) (uint32, int) {
	var v uint32
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, -1
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// ResponseHeaderFlexible reports whether the response to (key, version)
// carries header v1 (a tag section). ApiVersions never does, at any version
// (KIP-511: clients must parse it before they know the broker's versions).
func ResponseHeaderFlexible(key, version int16) bool {
	return key != KeyApiVersions && Flexible(key, version)
}

// AppendResponseHeader appends the response header for (key, version).
func AppendResponseHeader(dst []byte, key, version int16, corr int32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if ResponseHeaderFlexible(key, version) {
		dst = append(dst, 0)
	}
	return dst
}

// AppendResponse appends a complete response frame (size prefix, header,
// body) for resp answering the request with header h.
func AppendResponse(dst []byte, h RequestHeader, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = AppendResponseHeader(dst, h.Key, h.Version, h.CorrelationID)
	resp.SetVersion(h.Version)
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ResponseHeaderLen returns the length of the response header at the start of
// frame (the bytes after the size prefix) for a response to (key, version):
// the correlation id, plus the tag section of header v1.
func ResponseHeaderLen(frame []byte, key, version int16) (int, error) {
	if len(frame) < 4 {
		return 0, ErrTruncated
	}
	if !ResponseHeaderFlexible(key, version) {
		return 4, nil
	}
	n, err := skipTags(frame[4:])
	if err != nil {
		return 0, err
	}
	return 4 + n, nil
}
