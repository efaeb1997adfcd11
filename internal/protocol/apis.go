package protocol

import "github.com/twmb/franz-go/pkg/kmsg"

// maxKey bounds the API keys we index; kmsg v1.15 knows keys below 100.
const maxKey = 128

// apiFacts holds, per API key, what kmsg knows: whether the key exists, its
// highest version, and the first flexible version (-1: never flexible).
// Computed once from kmsg's generated code and never modified.
type apiFacts struct {
	known     [maxKey]bool
	maxVer    [maxKey]int16
	firstFlex [maxKey]int16
}

var facts = buildFacts() // immutable after package initialisation

func buildFacts() *apiFacts {
	f := new(apiFacts)
	for k := int16(0); k < maxKey; k++ {
		f.firstFlex[k] = -1
		req := kmsg.RequestForKey(k)
		if req == nil {
			continue
		}
		f.known[k] = true
		f.maxVer[k] = req.MaxVersion()
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				f.firstFlex[k] = v
				break
			}
		}
	}
	return f
}

// KnownKey reports whether kmsg has a schema for the API key.
func KnownKey(key int16) bool { return key >= 0 && key < maxKey && facts.known[key] }

// MaxVersion is kmsg's highest version of the API (0 for unknown keys).
func MaxVersion(key int16) int16 {
	if !KnownKey(key) {
		return 0
	}
	return facts.maxVer[key]
}

// Flexible reports whether (key, version) uses flexible encoding (KIP-482)
// and so request header v2. It is not capped at kmsg's highest version: a
// version newer than we know is flexible if an older one already was, the
// rule Kafka's generated header-version switch follows.
func Flexible(key, version int16) bool {
	if !KnownKey(key) {
		return false
	}
	ff := facts.firstFlex[key]
	return ff >= 0 && version >= ff
}
