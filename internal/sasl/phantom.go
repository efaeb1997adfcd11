package sasl

import (
	"encoding/binary"
	"iter"
	"math"
	"math/big"
	"sort"
	"strconv"
)

// A phantom challenge answers a login for a user that does not exist. To
// keep user names from being enumerated it must look, in everything the
// server-first message shows (iterations, salt length, salt alphabet), like
// the challenge of a user that does exist, and it must be the same every
// time for the same name, as a real user's is.

// SaltForm is how a salt was made, as far as its bytes show it.
type SaltForm uint8

// The salt forms. Kafka's own tools (kafka-configs, kafka-storage, the Java
// admin client) salt with ScramFormatter.secureRandomBytes: the UTF-8 text
// of a random 130-bit number in base 36, 25 or 26 characters (rarely
// fewer). Everything else (franz-go's kadm, `scram-proxy users add`, a
// stored form written by hand) shows only its length.
const (
	SaltBytes  SaltForm = iota // SaltLen bytes with no visible structure
	SaltBase36                 // Kafka's generator; its length follows from the number
)

// Shape is what a server-first message reveals about a credential besides
// its salt's exact bytes.
type Shape struct {
	Iterations int
	Form       SaltForm
	SaltLen    int // for SaltBytes; 0 for SaltBase36
}

// String is a stable text form (it feeds the phantom choice's hash).
func (s Shape) String() string {
	if s.Form == SaltBase36 {
		return "i=" + strconv.Itoa(s.Iterations) + ",base36"
	}
	return "i=" + strconv.Itoa(s.Iterations) + ",bytes=" + strconv.Itoa(s.SaltLen)
}

// ShapeOf is the shape of c's challenge.
func ShapeOf(c Credential) Shape {
	if isKafkaSalt(c.Salt) {
		return Shape{Iterations: c.Iterations, Form: SaltBase36}
	}
	return Shape{Iterations: c.Iterations, Form: SaltBytes, SaltLen: len(c.Salt)}
}

// isKafkaSalt reports whether salt could have come from Kafka's generator:
// the base-36 digits of a number below 2^130, without leading zeros.
func isKafkaSalt(salt []byte) bool {
	if len(salt) == 0 || len(salt) > 26 || (salt[0] == '0' && len(salt) > 1) {
		return false
	}
	for _, b := range salt {
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'z') {
			return false
		}
	}
	n, ok := new(big.Int).SetString(string(salt), 36)
	return ok && n.BitLen() <= 130
}

// ShapeCount is how many real credentials of one mechanism have a shape.
type ShapeCount struct {
	Shape Shape
	Count int
}

// ShapeSource supplies the shapes of the real users' credentials, so that
// phantom challenges can be drawn from them. Implementations must be safe
// for concurrent use and cheap to call (once per unknown-user login): the
// result is read, never modified, by the caller.
type ShapeSource interface {
	PhantomShapes(m Mechanism) []ShapeCount
}

// Population counts the shapes of creds; the result is ordered by count
// (highest first, then by String) and keeps at most MaxPhantomShapes
// entries: the phantom choice costs one HMAC per entry, and a shape so rare
// that it falls off the list identifies its few owners anyway. Shapes below
// MinIterations are left out: such users fail at round 1, as in Kafka.
func Population(creds iter.Seq[Credential]) []ShapeCount {
	counts := map[Shape]int{}
	for c := range creds {
		CountShape(counts, c, 1)
	}
	return RankShapes(counts)
}

// CountShape adds delta to the count of c's shape in counts, for a
// credential Population counts (one whose shape can be shown), and drops a
// shape whose count reaches 0. A store that changes one user at a time
// keeps its counts current with it instead of recounting every user.
func CountShape(counts map[Shape]int, c Credential, delta int) {
	if c.Iterations < MinIterations || len(c.Salt) == 0 {
		return
	}
	s := ShapeOf(c)
	if counts[s] += delta; counts[s] <= 0 {
		delete(counts, s)
	}
}

// RankShapes is Population's answer for shape counts: ordered by count,
// highest first, then by String, at most MaxPhantomShapes entries.
func RankShapes(counts map[Shape]int) []ShapeCount {
	out := make([]ShapeCount, 0, len(counts))
	for s, n := range counts {
		out = append(out, ShapeCount{Shape: s, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Shape.String() < out[j].Shape.String()
	})
	if len(out) > MaxPhantomShapes {
		out = out[:MaxPhantomShapes]
	}
	return out
}

// MaxPhantomShapes bounds the shapes a phantom is drawn from.
const MaxPhantomShapes = 32

// DefaultPhantomShape is used while no real user has a credential of the
// mechanism (every login for it then fails alike, so nothing can be told
// apart): the shape of the credentials the proxy derives itself, for
// `password:` entries and secrets_dir users.
func DefaultPhantomShape() Shape {
	return Shape{Iterations: MinIterations, Form: SaltBytes, SaltLen: 24}
}

// choosePhantomShape picks name's shape by weighted rendezvous hashing:
// each shape scores -ln(u)/count, u uniform in (0,1] from an HMAC of the
// name and the shape, and the lowest score wins. Over many names each shape
// wins in proportion to its count, the same name always gets the same
// shape, and when the population changes (a reload, an admin-API write)
// only about the share of names that the change itself shifts moves to
// another shape, instead of every name being dealt again.
func choosePhantomShape(mac func(label string) []byte, pop []ShapeCount) Shape {
	best, bestScore := DefaultPhantomShape(), math.Inf(1)
	for _, sc := range pop {
		if sc.Count <= 0 {
			continue
		}
		h := mac("shape\x00" + sc.Shape.String())
		u := (float64(binary.BigEndian.Uint64(h)>>11) + 1) / (1 << 53) // (0, 1]
		if score := -math.Log(u) / float64(sc.Count); score < bestScore {
			best, bestScore = sc.Shape, score
		}
	}
	return best
}

// phantomCredential derives a stable, plausible credential for a user that
// does not exist: its shape drawn from pop, its salt made like a real one of
// that shape, its keys random-looking. Everything comes from key, so the
// same name gets the same challenge across connections and restarts (while
// the population stands).
func phantomCredential(key []byte, m Mechanism, user string, pop []ShapeCount) Credential {
	h := m.newHash()
	mac := func(label string) []byte {
		return hmacSum(h, key, []byte(label+"\x00"+string(m)+"\x00"+user))
	}
	shape := choosePhantomShape(mac, pop)
	var salt []byte
	if shape.Form == SaltBase36 {
		// ScramFormatter.secureRandomBytes: 130 bits, written in base 36.
		b := mac("salt")[:17]
		b[0] &= 0x03
		salt = []byte(new(big.Int).SetBytes(b).Text(36))
	} else {
		for i := 0; len(salt) < shape.SaltLen; i++ {
			salt = append(salt, mac("salt"+strconv.Itoa(i))...)
		}
		salt = salt[:shape.SaltLen]
	}
	return Credential{
		Salt:       salt,
		StoredKey:  mac("stored_key"),
		ServerKey:  mac("server_key"),
		Iterations: shape.Iterations,
	}
}
