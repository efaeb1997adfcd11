package protocol

import "encoding/binary"

// KeyDescribeTopicPartitions is DescribeTopicPartitions (KIP-966).
const KeyDescribeTopicPartitions int16 = 75

// NamesTopics reports whether a Metadata or DescribeTopicPartitions request
// names the topics it asks about, rather than asking for all of them: a
// broker answers a named topic the client may not see with an error entry,
// and leaves it out of an answer about all topics. frame is the request
// after its size prefix, at least through the topic count (the first field
// of both bodies): a null array (Metadata v1+), an empty one (Metadata v0,
// DescribeTopicPartitions) or a frame too short to tell is "all".
func NamesTopics(frame []byte) bool {
	h, err := ParseRequestHeader(frame)
	if err != nil || (h.Key != KeyMetadata && h.Key != KeyDescribeTopicPartitions) {
		return false
	}
	body := frame[h.Len:]
	if h.Flexible {
		n, k := binary.Uvarint(body) // compact array: length + 1, 0 for null
		return k > 0 && n > 1
	}
	if len(body) < 4 {
		return false
	}
	return int32(binary.BigEndian.Uint32(body)) > 0
}
