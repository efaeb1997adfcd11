package localapi

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/rewrite"
)

// APIs answers the local APIs over a token manager and a SCRAM admin. It is
// safe for concurrent use.
type APIs struct {
	tokens *dtoken.Manager
	admin  *credstore.Admin
	broker *brokerTokens // delegation_tokens.store broker: answers the token APIs; nil: tokens does
}

// New returns the local APIs over tokens and admin, both required.
func New(tokens *dtoken.Manager, admin *credstore.Admin) *APIs {
	return &APIs{tokens: tokens, admin: admin}
}

// caller is who sends a request: "User:<name>", and whether the connection
// logged in with a delegation token.
type caller struct {
	principal string
	tokenAuth bool
}

// api is one row of the table: an API key, the versions answered (each
// handler file opens with why) and the handler.
type api struct {
	key, min, max int16
	handle        func(*APIs, caller, kmsg.Request) (kmsg.Response, error)
}

// table lists every API the proxy answers itself. Never modified.
var table = [...]api{
	{protocol.KeyCreateDelegationToken, 0, 3, handler((*APIs).createDelegationToken)},
	{protocol.KeyRenewDelegationToken, 0, 2, handler((*APIs).renewDelegationToken)},
	{protocol.KeyExpireDelegationToken, 0, 2, handler((*APIs).expireDelegationToken)},
	{protocol.KeyDescribeDelegationToken, 0, 3, handler((*APIs).describeDelegationToken)},
	{protocol.KeyDescribeUserSCRAMCredentials, 0, 0, handler((*APIs).describeUserSCRAMCredentials)},
	{protocol.KeyAlterUserSCRAMCredentials, 0, 0, handler((*APIs).alterUserSCRAMCredentials)},
}

// handler adapts a handler of one request type to the table's signature.
func handler[R kmsg.Request](f func(*APIs, caller, R) (kmsg.Response, error)) func(*APIs, caller, kmsg.Request) (kmsg.Response, error) {
	return func(a *APIs, c caller, req kmsg.Request) (kmsg.Response, error) {
		r, ok := req.(R)
		if !ok {
			return nil, fmt.Errorf("localapi: %s is not a %T", kmsg.NameForKey(req.Key()), r)
		}
		return f(a, c, r)
	}
}

// Ranges lists the API keys and versions answered; the proxy advertises
// them in ApiVersions.
func (*APIs) Ranges() []rewrite.Range {
	out := make([]rewrite.Range, 0, len(table))
	for _, t := range table {
		out = append(out, rewrite.Range{Key: t.key, Min: t.min, Max: t.max})
	}
	return out
}

// Handle answers one request, already parsed at a version Ranges lists,
// from an authenticated principal ("User:<name>"); tokenAuth tells whether
// the connection logged in with a delegation token. Kafka error codes
// travel in the response; an error is an internal failure (storage), after
// which the request cannot be answered.
func (a *APIs) Handle(ctx context.Context, principal string, tokenAuth bool, req kmsg.Request) (kmsg.Response, error) {
	c := caller{principal: principal, tokenAuth: tokenAuth}
	if a.broker != nil {
		if resp, ok, err := a.broker.handle(ctx, c, req); ok {
			return resp, err
		}
	}
	for _, t := range table {
		if t.key == req.Key() {
			return t.handle(a, c, req)
		}
	}
	return nil, fmt.Errorf("localapi: no handler for %s", kmsg.NameForKey(req.Key()))
}
