package credstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// EditFile applies edit to the credentials file's YAML tree (comments and
// other users are kept) and replaces the file atomically: a temporary file
// in the same directory, fsynced, then renamed over the original. A missing
// file starts empty. The result must still load, or nothing is written.
func EditFile(path string, edit func(users *yaml.Node) error) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	var doc yaml.Node
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return errors.New("credentials file is not valid YAML")
		}
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return errors.New("credentials file: expected a mapping with a users key")
	}
	users := mapValue(root, "users")
	if users == nil || users.Kind != yaml.MappingNode {
		if users == nil {
			users = &yaml.Node{Kind: yaml.MappingNode}
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "users"}, users)
		} else {
			*users = yaml.Node{Kind: yaml.MappingNode}
		}
	}
	if err := edit(users); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if _, _, err := Parse(buf.Bytes(), FileOptions{Rand: zeroReader{}}); err != nil {
		return fmt.Errorf("refusing to write a file that would not load: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// zeroReader feeds the validation load; its derived credentials are dropped.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func deleteKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
	}
	return false
}

// SetCredential sets user's stored form for m, creating the user if needed
// and dropping a development `password:` entry the new credential replaces.
func SetCredential(users *yaml.Node, user string, m sasl.Mechanism, c sasl.Credential) {
	u := mapValue(users, user)
	if u == nil || u.Kind != yaml.MappingNode {
		if u == nil {
			u = &yaml.Node{Kind: yaml.MappingNode}
			users.Content = append(users.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: user}, u)
		} else {
			*u = yaml.Node{Kind: yaml.MappingNode}
		}
	}
	deleteKey(u, "password")
	val := &yaml.Node{Kind: yaml.ScalarNode, Value: c.StoredForm(), Style: yaml.DoubleQuotedStyle}
	if v := mapValue(u, string(m)); v != nil {
		*v = *val
		return
	}
	u.Content = append(u.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: string(m)}, val)
}

// DeleteCredential removes one mechanism of user, or the whole user when m
// is empty (or it was the user's last entry).
func DeleteCredential(users *yaml.Node, user string, m sasl.Mechanism) error {
	u := mapValue(users, user)
	if u == nil {
		return fmt.Errorf("no user %q", user)
	}
	if m != "" {
		if !deleteKey(u, string(m)) {
			return fmt.Errorf("user %q has no %s credential", user, m)
		}
		if len(u.Content) > 0 {
			return nil
		}
	}
	deleteKey(users, user)
	return nil
}

// Summary describes one user of a credentials file without its secrets.
type Summary struct {
	User    string
	Entries []string // "SCRAM-SHA-512 iterations=8192", "password (development only)"
}

// ListFile summarises a credentials file, sorted by user.
func ListFile(path string) ([]Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	snap, _, err := Parse(data, FileOptions{Rand: zeroReader{}})
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc)
	dev := map[string]bool{}
	if len(doc.Content) > 0 {
		if users := mapValue(doc.Content[0], "users"); users != nil {
			for i := 0; i+1 < len(users.Content); i += 2 {
				if mapValue(users.Content[i+1], "password") != nil {
					dev[users.Content[i].Value] = true
				}
			}
		}
	}
	byUser := map[string][]string{}
	snap.each(func(u string, m sasl.Mechanism, c sasl.Credential) {
		if !dev[u] {
			byUser[u] = append(byUser[u], string(m)+" iterations="+strconv.Itoa(c.Iterations))
		}
	})
	for u := range dev {
		byUser[u] = append(byUser[u], "password (development only)")
	}
	out := make([]Summary, 0, len(byUser))
	for u, e := range byUser {
		sort.Strings(e)
		out = append(out, Summary{User: u, Entries: e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out, nil
}

// String renders a summary line.
func (s Summary) String() string { return s.User + "\t" + strings.Join(s.Entries, ", ") }
