package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// A principal Options.Admit refuses (upstream.principal_mode client: the
// brokers refused it a token) fails its login with SASL_AUTHENTICATION_FAILED
// carrying the refusal; an admitted one logs in, and re-authentications are
// not asked again.
func TestAdmitRefusesTheLogin(t *testing.T) {
	var asked atomic.Int64
	refuse := atomic.Bool{}
	e := newEnv(t, func(o *Options) {
		o.Admit = func(_ context.Context, principal, _ string) error {
			asked.Add(1)
			if principal != "User:"+testUser {
				t.Errorf("Admit asked about %q", principal)
			}
			if refuse.Load() {
				return errors.New("the brokers refused a delegation token for User:alice: DELEGATION_TOKEN_AUTHORIZATION_FAILED")
			}
			return nil
		}
	})
	refuse.Store(true)
	w := e.dial()
	r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2)
	if r.ErrorCode != 58 || r.ErrorMessage == nil ||
		*r.ErrorMessage != "Authentication failed: the brokers refused a delegation token for User:alice: DELEGATION_TOKEN_AUTHORIZATION_FAILED" {
		t.Fatalf("refused login: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	refuse.Store(false)
	w = e.dial()
	if r := w.Login(sasl.ScramSHA512, testUser, testPassword, 2); r.ErrorCode != 0 {
		t.Fatalf("admitted login: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("Admit asked %d times, want once per login", n)
	}
}
