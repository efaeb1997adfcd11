package credstore

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// FuzzLoadMSKSecret loads an arbitrary file as an MSK secret from
// credentials.secrets_dir. A file that holds a JSON object with a non-empty
// username and password must load as that user's SCRAM-SHA-512 credential
// for that password; any other file must fail with a message that names
// the file and quotes nothing of its content (a secret holds a password).
func FuzzLoadMSKSecret(f *testing.F) {
	f.Add([]byte(`{"username":"alice","password":"alice-secret"}`))
	f.Add([]byte(`{"username":"al,ice=","password":"p\u00e9\u0000"}`))
	f.Add([]byte(`{"username":"alice","password":""}`))
	f.Add([]byte(`{"username":"alice","password":"x","username":"bob"}`))
	f.Add([]byte(`["alice","x"]`))
	f.Add([]byte(`{"username":"alice","password":"x"} trailing`))
	f.Add([]byte("\xef\xbb\xbf{\"username\":\"a\",\"password\":\"b\"}"))
	dir := f.TempDir() // its one secret is rewritten by every input
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, secretPrefix+"fuzz"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		store := NewStore(NewSnapshot())
		r := &Reloader{Store: store, SecretsDir: dir, Rand: bytes.NewReader(make([]byte, 1024))}
		err := r.Load()

		var want mskSecret
		if json.Unmarshal(data, &want) != nil || want.Username == "" || want.Password == "" {
			msg := "credentials.secrets_dir " + dir + `: AmazonMSK_fuzz: not a {"username","password"} JSON secret`
			if err == nil || err.Error() != msg {
				t.Fatalf("got error %v, want %q", err, msg)
			}
			return
		}
		if err != nil {
			t.Fatalf("secret for %q refused: %v", want.Username, err)
		}
		c, err := store.LookupUser(context.Background(), sasl.ScramSHA512, want.Username)
		if err != nil {
			t.Fatalf("user %q not loaded: %v", want.Username, err)
		}
		check, err := sasl.DeriveCredential(sasl.ScramSHA512, want.Password, c.Salt, c.Iterations)
		if err != nil || !bytes.Equal(check.StoredKey, c.StoredKey) || !bytes.Equal(check.ServerKey, c.ServerKey) {
			t.Fatalf("user %q: the credential is not for the secret's password (%v)", want.Username, err)
		}
		if store.Users() != 1 {
			t.Fatalf("%d users from one secret", store.Users())
		}
	})
}
