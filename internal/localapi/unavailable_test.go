package localapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/credstore"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
)

// downStore is a shared store whose brokers are unreachable: every write
// fails as statelog's do.
type downStore struct{}

func (downStore) err() error {
	return fmt.Errorf("%w: write record: %w", statelog.ErrUnavailable, context.DeadlineExceeded)
}
func (downStore) LoadTokens() ([]dtoken.Info, error) { return nil, nil }
func (s downStore) PutToken(dtoken.Info) error       { return s.err() }
func (s downStore) DeleteToken(string) error         { return s.err() }
func (downStore) LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error) {
	return nil, nil
}
func (s downStore) PutUser(string, map[sasl.Mechanism]sasl.Credential) error { return s.err() }

func TestUnreachableStateAnswersRequestTimedOut(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	tokens, err := dtoken.New(dtoken.Options{SecretKey: "k", SuperUsers: []string{"User:admin"}, Store: downStore{},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := credstore.NewAdmin(credstore.NewStore(nil), downStore{}, []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	a := New(tokens, admin)
	ctx := context.Background()

	resp, err := a.Handle(ctx, "User:alice", false, kmsg.NewPtrCreateDelegationTokenRequest())
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.(*kmsg.CreateDelegationTokenResponse); r.ErrorCode != kerr.RequestTimedOut.Code || r.TokenID != "" || len(r.HMAC) != 0 {
		t.Fatalf("create: %+v", r)
	}
	if tokens.Len() != 0 {
		t.Fatal("a token the store did not take is in the cache")
	}

	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, u := range []string{"bob", "carol", "bob"} {
		x := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		x.Name, x.Mechanism, x.Iterations = u, 2, 4096
		x.Salt, x.SaltedPassword = []byte("salt"), make([]byte, 64)
		alter.Upsertions = append(alter.Upsertions, x)
	}
	alter.Upsertions[2].Name = "dave"
	resp, err = a.Handle(ctx, "User:admin", false, alter)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
	if len(r.Results) != 3 {
		t.Fatalf("%d results", len(r.Results))
	}
	for i, want := range []string{"bob", "carol", "dave"} {
		if res := r.Results[i]; res.User != want || res.ErrorCode != kerr.RequestTimedOut.Code || res.ErrorMessage == nil {
			t.Errorf("result %d: %+v", i, res)
		}
	}
	if d, _ := admin.Describe("User:admin", nil); len(d) != 0 {
		t.Fatalf("users the store did not take: %+v", d)
	}
}
