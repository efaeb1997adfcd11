package dtoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestTokensPerOwnerAreLimited: an owner may hold MaxPerOwner live tokens;
// one more answers POLICY_VIOLATION (44), whoever asks for it, and room
// comes back as tokens are expired or run out.
func TestTokensPerOwnerAreLimited(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	m, err := New(Options{SecretKey: "k", SuperUsers: []string{"User:admin"}, Now: c.now, MaxPerOwner: 3})
	if err != nil {
		t.Fatal(err)
	}
	var first Created
	for i := range 3 {
		out, err := m.Create(alice, "", "", nil, time.Duration(i+1)*time.Hour)
		if err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
		if i == 0 {
			first = out
		}
	}
	if _, err := m.Create(alice, "", "", nil, 0); !errors.Is(err, ErrTooManyTokens) {
		t.Fatalf("4th token for alice: %v, want ErrTooManyTokens", err)
	}
	if _, err := m.Create(admin, "User", "alice", nil, 0); !errors.Is(err, ErrTooManyTokens) {
		t.Fatalf("a super user creating alice's 4th token: %v, want ErrTooManyTokens", err)
	}
	if _, err := m.Create(bob, "", "", nil, 0); err != nil {
		t.Fatalf("bob is not limited by alice's tokens: %v", err)
	}
	if _, err := m.Expire(alice, first.HMAC, -1); err != nil {
		t.Fatalf("expire: %v", err)
	}
	if _, err := m.Create(alice, "", "", nil, time.Hour); err != nil {
		t.Fatalf("after expiring one: %v", err)
	}
	c.t = c.t.Add(90 * time.Minute) // two of alice's tokens are past their lifetime, not yet swept
	if _, err := m.Create(alice, "", "", nil, 0); err != nil {
		t.Fatalf("expired tokens still count: %v", err)
	}
}

type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("no randomness at start-up") }

// tokenLogin runs a SCRAM exchange with password base64(hmac) and the
// tokenauth extension against m (client side by hand: RFC 5802 proof over
// the client-first-bare that carries the extension).
func tokenLogin(t *testing.T, m *Manager, mech sasl.Mechanism, id string, hmacBytes []byte) error {
	t.Helper()
	a := sasl.NewAuthenticator(sasl.Options{Users: sasl.UserLookupFunc(func(context.Context, sasl.Mechanism, string) (sasl.Credential, error) {
		return sasl.Credential{}, sasl.ErrUnknownCredential
	}), Tokens: m})
	return scramTokenLogin(a, mech, id, func(salt []byte, iters int) ([]byte, error) {
		return sasl.SaltedPassword(mech, base64.StdEncoding.EncodeToString(hmacBytes), salt, iters)
	})
}

// scramTokenLogin is the client side of a token login against a; salted
// returns the salted password for the server's salt and iterations.
func scramTokenLogin(a *sasl.Authenticator, mech sasl.Mechanism, id string, salted func(salt []byte, iters int) ([]byte, error)) error {
	h := sha512.New
	if mech == sasl.ScramSHA256 {
		h = sha256.New
	}
	mac := func(key []byte, msg string) []byte {
		x := hmac.New(h, key)
		x.Write([]byte(msg))
		return x.Sum(nil)
	}
	bare := "n=" + id + ",r=clientnonce,tokenauth=true"
	conv, _ := a.Start(context.Background(), mech)
	sf, err := conv.Step([]byte("n,," + bare))
	if err != nil {
		return err
	}
	var nonce, saltB64 string
	var iters int
	for _, f := range strings.Split(string(sf), ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			saltB64 = f[2:]
		case strings.HasPrefix(f, "i="):
			iters, _ = strconv.Atoi(f[2:])
		}
	}
	salt, _ := base64.StdEncoding.DecodeString(saltB64)
	sp, err := salted(salt, iters)
	if err != nil {
		return err
	}
	clientKey := mac(sp, "Client Key")
	sum := h()
	sum.Write(clientKey)
	withoutProof := "c=biws,r=" + nonce
	sig := mac(sum.Sum(nil), bare+","+string(sf)+","+withoutProof)
	proof := make([]byte, len(sig))
	subtle.XORBytes(proof, clientKey, sig)
	_, err = conv.Step([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	return err
}

// TestRestartDerivesNothing: a restart over stored tokens must not derive
// any key (it gets no randomness at all here, which a derivation needs for
// its salt) and the tokens must still log in. After a change of the secret
// key the tokens are unknown: their key is no longer listed, so neither the
// old HMAC nor the new key's logs in.
func TestRestartDerivesNothing(t *testing.T) {
	c := &clock{time.Now()}
	store := NewMemStore()
	m := newManager(t, "k", store, c)
	var made []Created
	for range 5 {
		out, err := m.Create(alice, "", "", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, out)
	}
	again, err := New(Options{SecretKey: "k", Store: store, Now: c.now, Rand: failingRand{}})
	if err != nil {
		t.Fatalf("restart needed randomness, so it derived credentials: %v", err)
	}
	for _, mech := range sasl.Mechanisms() {
		if err := tokenLogin(t, again, mech, made[0].Token.ID, made[0].HMAC); err != nil {
			t.Fatalf("%s token login after restart: %v", mech, err)
		}
	}

	rotated := newManager(t, "other-key", store, c)
	if err := tokenLogin(t, rotated, sasl.ScramSHA512, made[1].Token.ID, made[1].HMAC); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("the old key's HMAC logs in after a key change: %v", err)
	}
	if err := tokenLogin(t, rotated, sasl.ScramSHA512, made[1].Token.ID, HMAC("other-key", made[1].Token.ID)); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("the new key's HMAC logs in a token the new key did not mint: %v", err)
	}
}
