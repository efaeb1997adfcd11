package test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestSCRAMAdminAPIs: kadm adds a user through the proxy, the user logs in
// and produces, describe shows its iterations, delete ends its logins, and a
// non super user is refused with 31.
func TestSCRAMAdminAPIs(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"adm"}, config: withTokens(t)})
	ctx := ctxT(t, 60*time.Second)
	admin := adminFor(t, e, scramAuth("admin"))
	carol := scram.Auth{User: "carol", Pass: "carol-pass"}.AsSha512Mechanism()

	res, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "carol-pass"}})
	if err != nil || res["carol"].Err != nil {
		t.Fatalf("upsert: %v %+v", err, res)
	}
	rec := &recorder{}
	produceConsume(t, e, carol, "adm", 5, rec)

	desc, err := admin.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["carol"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Iterations != 8192 || d.CredInfos[0].Mechanism != kadm.ScramSha512 {
		t.Fatalf("describe carol: %+v", d)
	}
	if d := desc["alice"]; d.Err != nil || len(d.CredInfos) != 2 {
		t.Fatalf("describe alice (file user): %+v", d)
	}

	// File users are read-only to the API.
	res, _ = admin.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha512}}, nil)
	if !errors.Is(res["alice"].Err, kerr.UnacceptableCredential) || !strings.Contains(res["alice"].ErrMessage, "read-only") {
		t.Fatalf("deleting a file user: %+v", res["alice"])
	}
	// A non super user gets 31.
	res, err = adminFor(t, e, scramAuth("bob")).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "dave", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "x"}})
	if err == nil && !errors.Is(res["dave"].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("non super user alter: %v %+v", err, res)
	}
	// The minimum iteration count is accepted (bounds are unit-tested).
	res, _ = admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "erin", Mechanism: kadm.ScramSha512, Iterations: 4096, Salt: []byte("s"), SaltedPassword: make([]byte, 64)}})
	if res["erin"].Err != nil {
		t.Fatalf("4096 iterations refused: %+v", res["erin"])
	}

	res, err = admin.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "carol", Mechanism: kadm.ScramSha512}}, nil)
	if err != nil || res["carol"].Err != nil {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if err := ping(t, e, carol); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("login after delete: %v", err)
	}
	// Survives a restart (state.dir).
	res, _ = admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "carol-pass"}})
	if res["carol"].Err != nil {
		t.Fatal(res["carol"].Err)
	}
	e.restart(t)
	if err := ping(t, e, carol); err != nil {
		t.Fatalf("API user after restart: %v", err)
	}
}

// TestCredentialsFileReload: a user added to the file logs in within 2 s;
// a corrupted edit keeps the previous users.
func TestCredentialsFileReload(t *testing.T) {
	e := startProxy(t, envOptions{})
	users := filepath.Join(e.configDir, "users.yaml")
	orig, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := sasl.DeriveCredential(sasl.ScramSHA512, "frank-pass", []byte("frank-salt-0123456789abc"), 4096)
	edited := string(orig) + "  frank:\n    SCRAM-SHA-512: \"" + c.StoredForm() + "\"\n"
	if err := os.WriteFile(users, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	frank := scram.Auth{User: "frank", Pass: "frank-pass"}.AsSha512Mechanism()
	start := time.Now()
	for ping(t, e, frank) != nil {
		if time.Since(start) > 2*time.Second {
			t.Fatal("new user could not log in within 2 s of the edit")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("new user logged in %v after the edit", time.Since(start).Round(time.Millisecond))

	if err := os.WriteFile(users, []byte(edited+"  broken: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), "credentials not reloaded; keeping the previous users") {
		if time.Now().After(deadline) {
			t.Fatal("the broken edit was not reported")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ping(t, e, frank); err != nil {
		t.Fatalf("frank after a broken edit: %v", err)
	}
	if err := ping(t, e, scramAuth("alice")); err != nil {
		t.Fatalf("alice after a broken edit: %v", err)
	}
}

// TestMSKSecretsDir: an AmazonMSK_ secret lets its user log in (SHA-512).
func TestMSKSecretsDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "AmazonMSK_grace"), []byte(`{"username":"grace","password":"grace-pass"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startProxy(t, envOptions{topics: []string{"msk"}, config: func(c *config.Config) { c.Credentials.SecretsDir = dir }})
	grace := scram.Auth{User: "grace", Pass: "grace-pass"}.AsSha512Mechanism()
	rec := &recorder{}
	produceConsume(t, e, grace, "msk", 5, rec)
	if err := ping(t, e, scram.Auth{User: "grace", Pass: "grace-pass"}.AsSha256Mechanism()); err == nil {
		t.Fatal("MSK secrets are SCRAM-SHA-512 only")
	}
	// Rotate the secret: the old password stops working.
	if err := os.WriteFile(filepath.Join(dir, "AmazonMSK_grace"), []byte(`{"username":"grace","password":"rotated"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := scram.Auth{User: "grace", Pass: "rotated"}.AsSha512Mechanism()
	deadline := time.Now().Add(3 * time.Second)
	for ping(t, e, rotated) != nil {
		if time.Now().After(deadline) {
			t.Fatal("rotated secret not picked up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := ping(t, e, grace); err == nil {
		t.Fatal("old password still works after rotation")
	}
}
