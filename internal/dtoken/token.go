package dtoken

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Principal is a Kafka principal, "Type:Name".
type Principal struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// String renders "Type:Name", Kafka's KafkaPrincipal.toString.
func (p Principal) String() string { return p.Type + ":" + p.Name }

// ParsePrincipal splits "Type:Name" at the first colon.
func ParsePrincipal(s string) (Principal, error) {
	t, n, ok := strings.Cut(s, ":")
	if !ok || t == "" || n == "" {
		return Principal{}, fmt.Errorf("principal %q is not Type:Name", s)
	}
	return Principal{Type: t, Name: n}, nil
}

// Info is a token's metadata: what is persisted (the HMAC never is).
type Info struct {
	ID        string      `json:"token_id"`
	Owner     Principal   `json:"owner"`
	Requester Principal   `json:"requester"`
	Renewers  []Principal `json:"renewers"`
	Issue     time.Time   `json:"issue"`
	Expiry    time.Time   `json:"expiry"`
	Max       time.Time   `json:"max"`

	// KeyID names the key that minted the token (Options.Keys), and
	// KeyCheck fingerprints that key's secret (keyCheck): the token's HMAC
	// is computed with that key for as long as it is listed, renewals
	// included, and the token is unknown once it is not. The fingerprint
	// decides which listed key it is; the id is for people and for records
	// without a fingerprint (Manager.keyOf).
	KeyID    string `json:"key_id,omitempty"`
	KeyCheck []byte `json:"key_check,omitempty"`
	// Credentials are the token's SCRAM credentials in Kafka's stored form
	// (salt, StoredKey, ServerKey, iterations; never the HMAC, which is
	// the password), derived once when the token is issued under its key,
	// so that a start with many tokens derives nothing. Records without
	// them (older versions) derive them at the token's first login.
	Credentials map[sasl.Mechanism]string `json:"scram_credentials,omitempty"`
}

// expired follows Kafka's sweep rule: past its max timestamp or its expiry.
func (i Info) expired(now time.Time) bool {
	return i.Max.Before(now) || i.Expiry.Before(now)
}

// ownerOrRenewer is who may renew or expire the token; the requester that
// created it does not count (DelegationTokenControlManager).
func (i Info) ownerOrRenewer(p Principal) bool {
	if i.Owner == p {
		return true
	}
	for _, r := range i.Renewers {
		if r == p {
			return true
		}
	}
	return false
}

// keyCheck fingerprints a secret key, so that stored token credentials can
// be matched to the key they were derived under without revealing it.
func keyCheck(secret string) []byte {
	return HMAC(secret, "scram-proxy token credentials")[:16]
}

// HMAC is HMAC-SHA512 over the UTF-8 token id, keyed with the UTF-8 secret
// used directly, with no derivation (DelegationTokenManager.createHmac).
func HMAC(secret, tokenID string) []byte {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(tokenID))
	return m.Sum(nil)
}

// NewTokenID returns a Kafka Uuid string: 16 random bytes in URL-safe base64
// without padding (22 characters), redrawn when it would start with "-" as
// Uuid.randomUuid does.
func NewTokenID(rand io.Reader) (string, error) {
	var b [16]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return "", err
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if id[0] != '-' {
			return id, nil
		}
	}
}
