package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Options configures an Authenticator.
type Options struct {
	// Users finds user credentials (required).
	Users UserLookup
	// Tokens finds delegation-token credentials for tokenauth=true
	// logins; nil makes every token login fail ("unknown_token").
	Tokens TokenLookup
	// Rand supplies nonce randomness; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RejectExpiredTokens fails token logins whose expiry or max lifetime
	// has passed, at round 1. Kafka keeps accepting such tokens until its
	// expiry sweep removes them (docs/protocol.md, "Delegation tokens");
	// this is stricter.
	RejectExpiredTokens bool
	// PhantomKey, when set, answers unknown users with a made-up but stable
	// challenge (salt and keys derived from this secret) and fails them at
	// round 2 like a wrong password, so a client cannot tell whether a user
	// exists. Kafka fails unknown users at round 1. Keep the key stable
	// across restarts (state.dir keeps one).
	PhantomKey []byte
	// PhantomKeyFunc, when set, is read at each unknown user's login
	// instead of PhantomKey: a key a fleet shares through a log can change
	// once, when two proxies created it at the same moment and the log
	// keeps the later. It is called concurrently and must not return nil.
	PhantomKeyFunc func() []byte
	// PhantomShapes supplies the real users' challenge shapes (iterations,
	// salt form and length) that phantom challenges are drawn from, so an
	// unknown user's challenge looks like a known user's. nil means Users,
	// when it implements ShapeSource (credstore.Store does); otherwise
	// every phantom has DefaultPhantomShape.
	PhantomShapes ShapeSource

	// nonce overrides the server nonce (tests only, for exact vectors).
	nonce func() string

	_ struct{}
}

// Authenticator starts SCRAM server conversations. It is immutable and safe
// for concurrent use.
type Authenticator struct {
	o Options
}

// NewAuthenticator returns an Authenticator; o.Users must be set.
func NewAuthenticator(o Options) *Authenticator {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PhantomShapes == nil {
		o.PhantomShapes, _ = o.Users.(ShapeSource)
	}
	return &Authenticator{o: o}
}

// Start begins a conversation for mechanism m. ctx is handed to the
// credential lookups and must stay valid for the conversation.
func (a *Authenticator) Start(ctx context.Context, m Mechanism) (*Conversation, error) {
	if m.newHash() == nil {
		return nil, fmt.Errorf("sasl: unsupported mechanism %q", m)
	}
	return &Conversation{a: a, ctx: ctx, mech: m}, nil
}

// Result is the outcome of a successful conversation.
type Result struct {
	Mechanism Mechanism
	// Username is the decoded SCRAM username (for token logins, the token id).
	Username string
	// Principal is the authorization id: the username, or the token
	// owner's name (its principal type is discarded, as in Kafka).
	Principal          string
	TokenAuthenticated bool
	// TokenExpiry is the token's expiry at authentication time (zero for
	// password logins); it bounds the session (KIP-368).
	TokenExpiry time.Time
}

// Conversation is one SCRAM exchange, mirroring Kafka's ScramSaslServer. It
// is not safe for concurrent use. Once a step fails, every later step fails.
type Conversation struct {
	a    *Authenticator
	ctx  context.Context
	mech Mechanism

	round       int // 0: expect client-first, 1: client-final, 2: done
	failed      bool
	first       ClientFirst
	serverFirst string
	cred        Credential
	phantom     bool // an unknown user answered with a made-up challenge
	result      Result
}

// Username is the decoded username from client-first, "" before it parsed;
// for logs.
func (c *Conversation) Username() string { return c.first.Username }

// Done reports whether the exchange completed successfully.
func (c *Conversation) Done() bool { return c.round == 2 && !c.failed }

// Result returns the outcome; valid once Done.
func (c *Conversation) Result() Result { return c.result }

// Step consumes the client's next message and returns the server's reply:
// server-first for client-first, server-final ("v=...") for client-final.
// Errors are *AuthError wrapping ErrAuthFailed, ErrAuthzIDMismatch or
// ErrProofLength; no "e=" message is ever produced (Kafka sends none).
func (c *Conversation) Step(msg []byte) ([]byte, error) {
	if c.failed || c.round >= 2 {
		c.failed = true
		return nil, fail("unexpected_message")
	}
	var reply []byte
	var err error
	if c.round == 0 {
		reply, err = c.clientFirst(string(msg))
	} else {
		reply, err = c.clientFinal(string(msg))
	}
	if err != nil {
		c.failed = true
		c.cred = Credential{}
		return nil, err
	}
	c.round++
	return reply, nil
}

// Size caps on what a client may send in one SCRAM message: far above any
// real client's messages, far below the pre-auth frame cap.
const (
	MaxMessageSize  = 4096
	MaxUsernameSize = 256
)

func (c *Conversation) clientFirst(msg string) ([]byte, error) {
	if len(msg) > MaxMessageSize {
		return nil, fail("malformed_client_first")
	}
	cf, err := ParseClientFirst(msg)
	if err != nil || len(cf.Username) > MaxUsernameSize {
		return nil, fail("malformed_client_first")
	}
	c.first = cf
	o := &c.a.o
	res := Result{Mechanism: c.mech, Username: cf.Username, Principal: cf.Username}
	if cf.TokenAuth() {
		if o.Tokens == nil {
			return nil, fail("unknown_token")
		}
		tc, err := o.Tokens.LookupToken(c.ctx, c.mech, cf.Username)
		if err != nil {
			return nil, lookupFailure(err, "unknown_token")
		}
		if tc.OwnerName == "" {
			return nil, fail("unknown_token")
		}
		now := o.Now()
		if o.RejectExpiredTokens && (tc.Expiry.Before(now) || (!tc.MaxExpiry.IsZero() && tc.MaxExpiry.Before(now))) {
			return nil, fail("token_expired")
		}
		c.cred = tc.Credential
		res.Principal, res.TokenAuthenticated, res.TokenExpiry = tc.OwnerName, true, tc.Expiry
	} else {
		cred, err := o.Users.LookupUser(c.ctx, c.mech, cf.Username)
		switch {
		case errors.Is(err, ErrUnknownCredential) && (o.PhantomKey != nil || o.PhantomKeyFunc != nil):
			var pop []ShapeCount
			if o.PhantomShapes != nil {
				pop = o.PhantomShapes.PhantomShapes(c.mech)
			}
			key := o.PhantomKey
			if o.PhantomKeyFunc != nil {
				key = o.PhantomKeyFunc()
			}
			c.cred, c.phantom = phantomCredential(key, c.mech, cf.Username, pop), true
		case err != nil:
			return nil, lookupFailure(err, "unknown_user")
		default:
			c.cred = cred
		}
	}
	// Kafka compares the authzid with the SCRAM username (for tokens, the
	// token id), after the lookup (ScramSaslServer.evaluateResponse).
	if cf.AuthzID != "" && cf.AuthzID != cf.Username {
		return nil, &AuthError{Reason: "authzid_mismatch", Err: ErrAuthzIDMismatch}
	}
	if c.cred.Iterations < MinIterations {
		return nil, fail("iterations_too_low")
	}
	if len(c.cred.StoredKey) != c.mech.HashSize() || len(c.cred.ServerKey) != c.mech.HashSize() {
		return nil, fail("lookup_failed")
	}
	snonce, err := c.serverNonce()
	if err != nil {
		return nil, fail("lookup_failed")
	}
	c.result = res
	c.serverFirst = "r=" + cf.Nonce + snonce +
		",s=" + base64.StdEncoding.EncodeToString(c.cred.Salt) +
		",i=" + strconv.Itoa(c.cred.Iterations)
	return []byte(c.serverFirst), nil
}

// lookupFailure maps a lookup error: a missing credential, or anything else
// ("Credentials could not be obtained" in Kafka). Both fail generically.
func lookupFailure(err error, missing string) error {
	if errors.Is(err, ErrUnknownCredential) {
		return fail(missing)
	}
	return fail("lookup_failed")
}

// serverNonce is Kafka's: 130 random bits written in base 36 (1-26 chars
// of [0-9a-z]), from ScramFormatter.secureRandomString.
func (c *Conversation) serverNonce() (string, error) {
	if c.a.o.nonce != nil {
		return c.a.o.nonce(), nil
	}
	var b [17]byte
	if _, err := io.ReadFull(c.a.o.Rand, b[:]); err != nil {
		return "", err
	}
	b[0] &= 0x03 // keep 130 of the 136 bits
	return new(big.Int).SetBytes(b[:]).Text(36), nil
}

func (c *Conversation) clientFinal(msg string) ([]byte, error) {
	if len(msg) > MaxMessageSize {
		return nil, fail("malformed_client_final")
	}
	f, err := ParseClientFinal(msg)
	if err != nil {
		return nil, fail("malformed_client_final")
	}
	// Kafka accepts any client nonce that ends with the full nonce it
	// sent (looser than RFC 5802's equality).
	sentNonce := strings.TrimPrefix(c.serverFirst[:strings.Index(c.serverFirst, ",s=")], "r=")
	if !strings.HasSuffix(f.Nonce, sentNonce) {
		return nil, fail("nonce_mismatch")
	}
	h := c.mech.newHash()
	if len(f.Proof) != c.mech.HashSize() {
		return nil, &AuthError{Reason: "proof_length", Err: ErrProofLength}
	}
	authMessage := []byte(c.first.Bare + "," + c.serverFirst + "," + f.WithoutProof)
	clientSig := hmacSum(h, c.cred.StoredKey, authMessage)
	clientKey := make([]byte, len(clientSig))
	subtle.XORBytes(clientKey, f.Proof, clientSig)
	sum := h()
	sum.Write(clientKey)
	if !hmac.Equal(sum.Sum(nil), c.cred.StoredKey) || c.phantom {
		if c.phantom {
			return nil, fail("unknown_user") // same wire answer as a wrong password
		}
		return nil, fail("invalid_proof")
	}
	serverSig := hmacSum(h, c.cred.ServerKey, authMessage)
	c.cred = Credential{} // Kafka drops the credential once the exchange completes
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), nil
}
