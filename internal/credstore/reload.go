package credstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scram-proxy/scram-proxy/internal/poll"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// Reloader keeps the Store's file and secrets-dir layers in step with disk.
// It polls (stat, not inotify: Kubernetes swaps mounted secrets through
// symlinks that inotify watchers miss) and reloads a source when its
// fingerprint changes. A source that fails to load keeps its last good
// snapshot. Run owns all of its state; it is not for concurrent use.
type Reloader struct {
	Store      *Store
	File       string // credentials.file; "" for none
	SecretsDir string // credentials.secrets_dir; "" for none
	Interval   time.Duration
	Rand       io.Reader
	// OnLoad hears of every load attempt: the source, its user count, any
	// warnings, and the error that kept the previous snapshot.
	OnLoad func(src Source, users int, warns []Warning, err error)

	filePrint, dirPrint string
	secretCache         map[string]secretEntry // path → derived credential
}

type secretEntry struct {
	digest [32]byte // of the file's bytes
	user   string
	cred   sasl.Credential
}

// Load performs the initial load of every configured source; an error here
// (unlike in Run) is fatal for start-up.
func (r *Reloader) Load() error {
	var errs []error
	if r.File != "" {
		if err := r.loadFile(true); err != nil {
			errs = append(errs, err)
		}
	}
	if r.SecretsDir != "" {
		if err := r.loadDir(true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run polls until ctx ends.
func (r *Reloader) Run(ctx context.Context) {
	if r.Interval <= 0 {
		r.Interval = time.Second
	}
	poll.Every(ctx, r.Interval, func() {
		if r.File != "" {
			_ = r.loadFile(false)
		}
		if r.SecretsDir != "" {
			_ = r.loadDir(false)
		}
	})
}

func (r *Reloader) report(src Source, users int, warns []Warning, err error) {
	if r.OnLoad != nil {
		r.OnLoad(src, users, warns, err)
	}
}

// statPrint fingerprints a path by what stat says (following symlinks).
func statPrint(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d/%v", fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
}

func (r *Reloader) loadFile(force bool) error {
	p := statPrint(r.File)
	if !force && p == r.filePrint {
		return nil
	}
	r.filePrint = p
	snap, warns, err := LoadFile(r.File, FileOptions{Rand: r.Rand})
	if err != nil {
		err = fmt.Errorf("%s: %w", SourceFile, err)
		r.report(SourceFile, 0, nil, err)
		return err
	}
	r.Store.ReplaceSource(SourceFile, snap)
	r.report(SourceFile, snap.Users(), warns, nil)
	return nil
}

// secretPrefix names the files AWS Secrets Manager secrets for MSK SCRAM
// must have (AmazonMSK_...), as mounted by the Secrets Store CSI driver.
const secretPrefix = "AmazonMSK_"

func (r *Reloader) secretFiles() ([]string, error) {
	entries, err := os.ReadDir(r.SecretsDir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), secretPrefix) {
			out = append(out, filepath.Join(r.SecretsDir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (r *Reloader) loadDir(force bool) error {
	files, err := r.secretFiles()
	if err != nil {
		err = fmt.Errorf("%s: %w", SourceSecretsDir, err)
		r.report(SourceSecretsDir, 0, nil, err)
		return err
	}
	var b strings.Builder
	for _, f := range files {
		b.WriteString(f + "=" + statPrint(f) + ";")
	}
	if !force && b.String() == r.dirPrint {
		return nil
	}
	r.dirPrint = b.String()
	snap, warns, err := r.loadSecrets(files)
	if err != nil {
		r.report(SourceSecretsDir, 0, nil, err)
		return err
	}
	r.Store.ReplaceSource(SourceSecretsDir, snap)
	r.report(SourceSecretsDir, snap.Users(), warns, nil)
	return nil
}

// mskSecret is the JSON an MSK SCRAM secret holds.
type mskSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loadSecrets derives SCRAM-SHA-512 (MSK's only mechanism) for each secret,
// reusing the cached credential of files whose bytes did not change.
func (r *Reloader) loadSecrets(files []string) (*Snapshot, []Warning, error) {
	cache := map[string]secretEntry{}
	snap := NewSnapshot()
	var warns []Warning
	var errs []error
	owner := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(f), err))
			continue
		}
		digest := sha256.Sum256(data)
		e, ok := r.secretCache[f]
		if !ok || e.digest != digest {
			var s mskSecret
			if err := json.Unmarshal(data, &s); err != nil || s.Username == "" || s.Password == "" {
				// Never echo the content: it holds a password.
				errs = append(errs, fmt.Errorf("%s: not a {\"username\",\"password\"} JSON secret", filepath.Base(f)))
				continue
			}
			salt := make([]byte, 24)
			if _, err := io.ReadFull(r.Rand, salt); err != nil {
				return nil, nil, err
			}
			c, err := sasl.DeriveCredential(sasl.ScramSHA512, s.Password, salt, sasl.MinIterations)
			if err != nil {
				return nil, nil, err
			}
			e = secretEntry{digest: digest, user: s.Username, cred: c}
		}
		if prev, dup := owner[e.user]; dup {
			warns = append(warns, Warning{User: e.user, Message: "user defined by two secrets (" + filepath.Base(prev) + ", " + filepath.Base(f) + "); the later one wins"})
		}
		owner[e.user] = f
		cache[f] = e
		snap.Put(sasl.ScramSHA512, e.user, e.cred)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("credentials.secrets_dir %s: %w", r.SecretsDir, err)
	}
	r.secretCache = cache
	return snap, warns, nil
}
