package protocol

import "encoding/binary"

// ProduceAcks extracts the acks field from a Produce request body (the bytes
// after the request header). acks=0 requests get no response from Kafka, so
// the relay must not wait for one. ok is false when body is too short to
// tell; the caller then reads more of the frame.
//
// Layout: v0-v2 start with acks; v3+ put transactional_id (nullable string,
// compact from v9) first.
func ProduceAcks(version int16, body []byte) (acks int16, ok bool) {
	off := 0
	if version >= 3 {
		if version >= 9 {
			l, n := uvarint(body)
			if n <= 0 {
				return 0, false
			}
			off = n
			if l > 0 {
				off += int(l) - 1
			}
		} else {
			if len(body) < 2 {
				return 0, false
			}
			l := int16(binary.BigEndian.Uint16(body))
			off = 2
			if l > 0 {
				off += int(l)
			}
		}
	}
	if off < 0 || off+2 > len(body) {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(body[off:])), true
}
