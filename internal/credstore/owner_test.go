package credstore

import (
	"context"
	"errors"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// login runs a full SCRAM exchange with an xdg-go client against a.
func login(a *sasl.Authenticator, m sasl.Mechanism, user, password string) error {
	gen := scram.SHA512
	if m == sasl.ScramSHA256 {
		gen = scram.SHA256
	}
	client, err := gen.NewClientUnprepped(user, password, "")
	if err != nil {
		return err
	}
	cc := client.NewConversation()
	conv, err := a.Start(context.Background(), m)
	if err != nil {
		return err
	}
	first, _ := cc.Step("")
	sf, err := conv.Step([]byte(first))
	if err != nil {
		return err
	}
	final, err := cc.Step(string(sf))
	if err != nil {
		return err
	}
	_, err = conv.Step([]byte(final))
	return err
}

// TestHighestLayerOwnsEveryMechanism: alice is created through the admin
// API with SCRAM-SHA-256, then defined in credentials.file with
// SCRAM-SHA-512 only. The file owns alice: her old SHA-256 password must
// no longer log in, describe must show SHA-512 only, and the API must
// refuse to change her, all three by the same rule.
func TestHighestLayerOwnsEveryMechanism(t *testing.T) {
	ctx := context.Background()
	store := NewStore(nil)
	a, err := NewAdmin(store, NewMemUsers(), []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := sasl.SaltedPassword(sasl.ScramSHA256, "old-api-password", []byte("api-salt"), 4096)
	up := Upsertion{User: "alice", Mechanism: 1, Iterations: 4096, Salt: []byte("api-salt"), SaltedPassword: sp}
	if res, err := a.Alter("User:admin", nil, []Upsertion{up}); err != nil || res[0].Err != nil {
		t.Fatalf("API upsert failed: %v %+v", err, res)
	}
	auth := sasl.NewAuthenticator(sasl.Options{Users: store, PhantomKey: []byte("k")})
	if err := login(auth, sasl.ScramSHA256, "alice", "old-api-password"); err != nil {
		t.Fatalf("API user cannot log in before the move: %v", err)
	}

	file := NewSnapshot()
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "file-password", []byte("file-salt"), 8192)
	file.Put(sasl.ScramSHA512, "alice", c)
	store.Replace(file)

	if err := login(auth, sasl.ScramSHA256, "alice", "old-api-password"); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("the stale admin-API SHA-256 credential still logs in (err %v)", err)
	}
	if _, err := store.LookupUser(ctx, sasl.ScramSHA256, "alice"); !errors.Is(err, sasl.ErrUnknownCredential) {
		t.Errorf("lookup SHA-256: %v, want no credential", err)
	}
	if err := login(auth, sasl.ScramSHA512, "alice", "file-password"); err != nil {
		t.Errorf("file credential: %v", err)
	}

	res, _ := a.Describe("User:admin", []string{"alice"})
	if len(res) != 1 || len(res[0].Credentials) != 1 || res[0].Credentials[0].Mechanism != sasl.ScramSHA512 {
		t.Errorf("describe: %+v, want SCRAM-SHA-512 only", res)
	}
	ares, _ := a.Alter("User:admin", []Deletion{{User: "alice", Mechanism: 1}}, nil)
	var ro *ReadOnlyError
	if len(ares) != 1 || !errors.As(ares[0].Err, &ro) {
		t.Errorf("delete of the shadowed credential: %+v, want read-only (the file owns alice)", ares)
	}

	// Removing alice from the file hands her back to the API layer, whose
	// credential then applies again (and may be deleted there).
	store.Replace(NewSnapshot())
	if err := login(auth, sasl.ScramSHA256, "alice", "old-api-password"); err != nil {
		t.Errorf("after the file drops alice, the API credential: %v", err)
	}
}
