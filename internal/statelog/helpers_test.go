package statelog

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// testKeyring builds a keyring of the named keys, each key's bytes derived
// from its id so that two keyrings naming the same id share the key.
func testKeyring(t testing.TB, ids ...string) *Keyring {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		key := []byte(strings.Repeat(id, KeySize)[:KeySize])
		fmt.Fprintf(&b, "%s %s\n", id, base64.StdEncoding.EncodeToString(key))
	}
	k, err := ParseKeyring([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCluster starts a three-broker kfake cluster.
func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// recorder is a TokenSink, UserSink and Metrics that records what it hears.
type recorder struct {
	mu      sync.Mutex
	tokens  map[string]dtoken.Info
	users   map[string]map[sasl.Mechanism]sasl.Credential
	applied int // ApplyToken, ForgetToken and ApplyUser calls
	ignored map[string]int
	status  Status
}

func newRecorder() *recorder {
	return &recorder{tokens: map[string]dtoken.Info{}, users: map[string]map[sasl.Mechanism]sasl.Credential{},
		ignored: map[string]int{}}
}

func (r *recorder) ApplyToken(i dtoken.Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens[i.ID] = i
	r.applied++
}

func (r *recorder) ForgetToken(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tokens, id)
	r.applied++
}

func (r *recorder) ApplyUser(user string, creds map[sasl.Mechanism]sasl.Credential) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(creds) == 0 {
		delete(r.users, user)
	} else {
		r.users[user] = creds
	}
	r.applied++
}

func (r *recorder) StateRecordIgnored(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ignored[reason]++
}

func (r *recorder) StateApplied(offset int64, records int, digest uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = Status{Offset: offset, Records: records, Digest: digest}
}

func (r *recorder) token(id string) (dtoken.Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.tokens[id]
	return i, ok
}

func (r *recorder) user(name string) (map[sasl.Mechanism]sasl.Credential, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.users[name]
	return c, ok
}

func (r *recorder) ignoredCount(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ignored[reason]
}

func (r *recorder) appliedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

// proxy is one Log with its recorder, as one proxy of a fleet holds it.
type proxy struct {
	*Log
	rec *recorder
}

type logOpt func(*Options)

// openLog opens and restores a Log on c with the given keys (default k1).
func openLog(t *testing.T, c *kfake.Cluster, mods ...logOpt) proxy {
	t.Helper()
	rec := newRecorder()
	o := Options{Client: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Keys: testKeyring(t, "k1"),
		Metrics: rec, WriteTimeout: 5 * time.Second}
	for _, m := range mods {
		m(&o)
	}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Restore(ctx, func(err error) { t.Logf("restore retry: %v", err) }); err != nil {
		t.Fatal(err)
	}
	return proxy{Log: l, rec: rec}
}

// start starts p's tail feeding its recorder.
func (p proxy) start(t *testing.T) proxy {
	t.Helper()
	if err := p.Start(context.Background(), p.rec, p.rec); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventually polls cond until it holds; the wait is generous, as a loaded
// machine may be slow: the tests check that something happens, not how
// fast.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testToken(id string) dtoken.Info {
	now := time.UnixMilli(1_700_000_000_000).UTC()
	return dtoken.Info{ID: id, Owner: dtoken.Principal{Type: "User", Name: "alice"},
		Requester: dtoken.Principal{Type: "User", Name: "alice"}, Issue: now, Expiry: now.Add(time.Hour), Max: now.Add(2 * time.Hour)}
}

func testCreds(t testing.TB, password string) map[sasl.Mechanism]sasl.Credential {
	t.Helper()
	c, err := sasl.DeriveCredential(sasl.ScramSHA512, password, []byte("salt-"+password), 4096)
	if err != nil {
		t.Fatal(err)
	}
	return map[sasl.Mechanism]sasl.Credential{sasl.ScramSHA512: c}
}

// produceRaw writes a record to the state topic as any client of the
// cluster could.
func produceRaw(t *testing.T, c *kfake.Cluster, key, value []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: key, Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readRaw returns every record of the state topic as the brokers hold it.
func readRaw(t *testing.T, c *kfake.Cluster, upTo int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{DefaultTopic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for len(out) == 0 || out[len(out)-1].Offset < upTo {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records, want up to offset %d", len(out), upTo)
		}
		out = append(out, fs.Records()...)
	}
	return out
}
