package statelog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeyring(t *testing.T) {
	good := "# comment\n\nk2 " + strings.Repeat("A", 43) + "=\nk1 " + strings.Repeat("B", 43) + "=\n"
	k, err := ParseKeyring([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if ids := k.IDs(); len(ids) != 2 || ids[0] != "k2" || ids[1] != "k1" {
		t.Fatalf("ids %v", ids)
	}
	if s := k.String(); strings.Contains(s, "AAAA") || !strings.Contains(s, "k2") {
		t.Fatalf("String %q", s)
	}
	key := strings.Repeat("A", 43) + "="
	for name, in := range map[string]string{
		"empty":        "# nothing\n",
		"one field":    "k1\n",
		"three fields": "k1 " + key + " extra\n",
		"short key":    "k1 " + strings.Repeat("A", 20) + "\n",
		"not base64":   "k1 " + strings.Repeat("!", 44) + "\n",
		"bad id":       "k/1 " + key + "\n",
		"long id":      strings.Repeat("k", 65) + " " + key + "\n",
		"duplicate":    "k1 " + key + "\nk1 " + key + "\n",
	} {
		_, err := ParseKeyring([]byte(in))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("k1 "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(path + ".missing"); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestSealBindsKindAndID(t *testing.T) {
	k := testKeyring(t, "k1")
	v, err := k.seal([]byte("secret/phantom_scram"), bytes.Repeat([]byte{7}, secretSize))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := k.decode([]byte("secret/phantom_scram"), v); err != nil || !bytes.Equal(e.Secret, bytes.Repeat([]byte{7}, secretSize)) {
		t.Fatalf("%+v %v", e, err)
	}
	for _, key := range []string{"secret/other", "token/phantom_scram", "user/phantom_scram"} {
		var re *RecordError
		if _, err := k.decode([]byte(key), v); !errors.As(err, &re) || re.Reason != ReasonOpen {
			t.Errorf("%s: %v, want %s", key, err, ReasonOpen)
		}
	}
	// Relabelling the key id in the header is caught too.
	relabelled := append([]byte(nil), v...)
	relabelled[3] = '2'
	k2 := testKeyring(t, "k1", "k2")
	if _, err := k2.decode([]byte("secret/phantom_scram"), relabelled); err == nil {
		t.Fatal("a relabelled value opened")
	}
}

// FuzzDecode feeds arbitrary keys and values to the record decoder, as a
// client that may write the state topic can. Nothing may panic, and a
// value that is not sealed under the keyring never decodes to a value.
func FuzzDecode(f *testing.F) {
	k := testKeyring(f, "k1")
	tok, _ := k.seal([]byte("token/t1"), []byte(`{"token_id":"t1","owner":{"type":"User","name":"alice"}}`))
	usr, _ := k.seal([]byte("user/bob"), []byte(`{"SCRAM-SHA-512":"salt=c2FsdA==,stored_key=AAAA,server_key=AAAA,iterations=4096"}`))
	sec, _ := k.seal([]byte("secret/phantom_scram"), bytes.Repeat([]byte{1}, secretSize))
	f.Add([]byte("token/t1"), tok)
	f.Add([]byte("user/bob"), usr)
	f.Add([]byte("secret/phantom_scram"), sec)
	f.Add([]byte("user/bob"), []byte{})
	f.Add([]byte("user/bob"), []byte{1, 2, 'k', '1'})
	f.Add([]byte("/"), []byte{1, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := k.decode(key, value)
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RecordError", err)
			}
			return
		}
		if e.Kind+"/"+e.ID != string(key) {
			t.Fatalf("decoded %s/%s from key %q", e.Kind, e.ID, key)
		}
		if !e.Delete && !bytes.Equal(value, tok) && !bytes.Equal(value, usr) && !bytes.Equal(value, sec) {
			// Only a value sealed under k1 opens; the fuzzer cannot
			// forge one, so anything else decoding is a hole.
			if _, err := k.open(key, value); err != nil {
				t.Fatalf("decoded without opening: %v", err)
			}
		}
	})
}

// FuzzParseKeyring parses arbitrary key files: no panic, and an accepted
// one has at least one key with a valid id.
func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("k1 " + strings.Repeat("A", 43) + "=\n"))
	f.Add([]byte("# c\nk2 " + strings.Repeat("A", 43) + "=\nk1 " + strings.Repeat("B", 43) + "=\n"))
	f.Add([]byte("k1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyring(data)
		if err != nil {
			return
		}
		for _, id := range k.IDs() {
			if !validKeyID(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
	})
}
