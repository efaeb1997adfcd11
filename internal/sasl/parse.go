package sasl

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ClientFirst is a parsed client-first-message. Bare is the raw
// client-first-message-bare (everything after the gs2 header), which goes
// into the AuthMessage as sent.
type ClientFirst struct {
	GS2Header  string
	AuthzID    string // decoded; "" when absent
	Username   string // decoded (=2C → ",", =3D → "=")
	Nonce      string
	Extensions map[string]string
	Bare       string
}

// TokenAuth reports the tokenauth extension as Java's Boolean.parseBoolean
// reads it: true only for a case-insensitive "true".
func (cf ClientFirst) TokenAuth() bool {
	return strings.EqualFold(cf.Extensions["tokenauth"], "true")
}

var errSyntax = errors.New("syntax")

// ParseClientFirst parses a client-first-message with the grammar Kafka's
// ScramMessages.ClientFirstMessage accepts (docs/protocol.md, "SCRAM"):
//
//	"n," ["a=" saslname] "," ["m=" value ","] "n=" saslname ",r=" nonce *("," key "=" value)
//
// Only the "n" channel-binding flag is accepted, and only ASCII: any byte
// above 0x7F, or NUL, fails.
func ParseClientFirst(msg string) (ClientFirst, error) {
	var cf ClientFirst
	if !ascii(msg) {
		return cf, errSyntax
	}
	rest, ok := strings.CutPrefix(msg, "n,")
	if !ok {
		return cf, errSyntax // "y" and "p=" flags are format errors in Kafka
	}
	if after, ok := strings.CutPrefix(rest, "a="); ok {
		name, tail, found := strings.Cut(after, ",")
		authz, valid := decodeSaslname(name)
		if !found || !valid {
			return cf, errSyntax
		}
		cf.AuthzID, rest = authz, tail
	} else if rest, ok = strings.CutPrefix(rest, ","); !ok {
		return cf, errSyntax
	}
	cf.GS2Header = msg[:len(msg)-len(rest)]
	cf.Bare = rest
	if after, ok := strings.CutPrefix(rest, "m="); ok {
		v, tail, found := strings.Cut(after, ",")
		if !found || v == "" {
			return cf, errSyntax
		}
		rest = tail // reserved mandatory extension: accepted and ignored
	}
	rest, ok = strings.CutPrefix(rest, "n=")
	if !ok {
		return cf, errSyntax
	}
	name, rest, _ := strings.Cut(rest, ",")
	if cf.Username, ok = decodeSaslname(name); !ok {
		return cf, errSyntax
	}
	rest, ok = strings.CutPrefix(rest, "r=")
	if !ok {
		return cf, errSyntax
	}
	cf.Nonce, rest, _ = strings.Cut(rest, ",")
	if !printable(cf.Nonce) {
		return cf, errSyntax
	}
	if rest != "" || strings.HasSuffix(msg, ",") {
		exts, ok := parseExtensions(rest)
		if !ok {
			return cf, errSyntax
		}
		cf.Extensions = exts
	}
	return cf, nil
}

// parseExtensions parses "k=v,k=v" (after the nonce's comma): key 1*ALPHA,
// value 1*(0x01..0x7F except ","). A repeated key keeps the last value, as
// Kafka's HashMap does.
func parseExtensions(s string) (map[string]string, bool) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, false
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return nil, false
			}
		}
		out[k] = v
	}
	return out, true
}

// decodeSaslname validates and decodes a saslname: 1* of 0x01..0x7F except
// "=" and ",", or the escapes "=2C" and "=3D".
func decodeSaslname(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ',':
			return "", false
		case '=':
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", false
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// ascii reports whether s stays within 0x01..0x7F, the only characters
// Kafka's SCRAM message patterns admit.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] > 0x7f {
			return false
		}
	}
	return true
}

// printable is the nonce alphabet: 1* of 0x21..0x7E except ",".
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// ClientFinal is a parsed client-final-message. WithoutProof is the raw
// client-final-message-without-proof that goes into the AuthMessage.
type ClientFinal struct {
	ChannelBinding []byte
	Nonce          string
	Proof          []byte
	WithoutProof   string
}

// ParseClientFinal parses a client-final-message with Kafka's grammar
// (docs/protocol.md, "SCRAM"):
//
//	"c=" base64 ",r=" nonce *("," key "=" value) ",p=" base64
//
// where base64 is standard, padded, and may be empty. The channel binding is
// decoded but, as in Kafka, never compared with anything.
func ParseClientFinal(msg string) (ClientFinal, error) {
	var f ClientFinal
	if !ascii(msg) {
		return f, errSyntax
	}
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return f, errSyntax
	}
	f.WithoutProof = msg[:i]
	var err error
	if f.Proof, err = strictBase64(msg[i+3:]); err != nil {
		return f, errSyntax
	}
	rest, ok := strings.CutPrefix(f.WithoutProof, "c=")
	if !ok {
		return f, errSyntax
	}
	cb, rest, _ := strings.Cut(rest, ",")
	if f.ChannelBinding, err = strictBase64(cb); err != nil {
		return f, errSyntax
	}
	rest, ok = strings.CutPrefix(rest, "r=")
	if !ok {
		return f, errSyntax
	}
	f.Nonce, rest, _ = strings.Cut(rest, ",")
	if !printable(f.Nonce) {
		return f, errSyntax
	}
	if rest != "" || strings.HasSuffix(f.WithoutProof, ",") {
		if _, ok := parseExtensions(rest); !ok {
			return f, errSyntax
		}
	}
	return f, nil
}

// strictBase64 decodes standard base64 with mandatory padding. Go's decoder
// skips CR and LF, which Kafka's pattern does not allow, so the alphabet is
// checked first.
func strictBase64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, errSyntax
		}
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}
