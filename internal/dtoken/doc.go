// Package dtoken implements Kafka delegation tokens (KIP-48, KIP-373) at the
// proxy: creation, renewal, expiry and description with Kafka's KRaft check
// orders (each refusal a sentinel error), the token HMAC and the SCRAM
// credentials derived from it for tokenauth logins.
//
// Token metadata persists through the small TokenStore interface; the HMAC is
// never stored, it is recomputed from the secret key, as Kafka does.
package dtoken
