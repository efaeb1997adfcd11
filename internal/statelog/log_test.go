package statelog

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

func TestRestoreCreatesTheTopic(t *testing.T) {
	c := newCluster(t)
	l := openLog(t, c, func(o *Options) { o.ReplicationFactor, o.MinInsyncReplicas = 3, 2 })
	adm := kadm.NewClient(mustClient(t, c))
	td, err := adm.ListTopics(context.Background(), DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	d := td[DefaultTopic]
	if len(d.Partitions) != 1 || len(d.Partitions[0].Replicas) != 3 {
		t.Fatalf("partitions %+v", d.Partitions)
	}
	rcs, err := adm.DescribeTopicConfigs(context.Background(), DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On(DefaultTopic, nil)
	got := map[string]string{}
	for _, cfg := range rc.Configs {
		got[cfg.Key] = cfg.MaybeValue()
	}
	if got["cleanup.policy"] != "compact" || got["min.insync.replicas"] != "2" {
		t.Fatalf("configs %v", got)
	}
	if id := l.TopicID(); id == [16]byte{} || id != d.ID {
		t.Fatalf("topic id %x, the brokers say %x", id, d.ID)
	}
}

func mustClient(t *testing.T, c interface{ ListenAddrs() []string }) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestWrongTopicSettingsAreNamed(t *testing.T) {
	c := newCluster(t)
	adm := kadm.NewClient(mustClient(t, c))
	if _, err := adm.CreateTopic(context.Background(), 3, 1, map[string]*string{
		"cleanup.policy": ptr("delete"), "min.insync.replicas": ptr("1")}, DefaultTopic); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{Client: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Keys: testKeyring(t, "k1")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	retries := 0
	err = l.Restore(context.Background(), func(error) { retries++ })
	var te *TopicError
	if !errors.As(err, &te) || retries != 0 {
		t.Fatalf("err %v (retries %d), want a *TopicError at once", err, retries)
	}
	want := []Mismatch{
		{"partitions", "3", "1"},
		{"replication factor", "1", "3 (state.kafka.replication_factor)"},
		{"cleanup.policy", `"delete"`, `"compact"`},
		{"min.insync.replicas", `"1"`, `"2" (state.kafka.min_insync_replicas)`},
	}
	if len(te.Mismatches) != len(want) {
		t.Fatalf("mismatches %+v, want %+v", te.Mismatches, want)
	}
	for i := range want {
		if te.Mismatches[i] != want[i] {
			t.Errorf("mismatch %d: %+v, want %+v", i, te.Mismatches[i], want[i])
		}
	}
	for _, s := range []string{`"__scram_proxy_state"`, "partitions is 3, want 1", `cleanup.policy is "delete", want "compact"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestAMatchingExistingTopicIsUsed(t *testing.T) {
	c := newCluster(t)
	adm := kadm.NewClient(mustClient(t, c))
	if _, err := adm.CreateTopic(context.Background(), 1, 1, map[string]*string{
		"cleanup.policy": ptr("compact"), "min.insync.replicas": ptr("1")}, DefaultTopic); err != nil {
		t.Fatal(err)
	}
	openLog(t, c, func(o *Options) { o.ReplicationFactor, o.MinInsyncReplicas = 1, 1 })
}

func TestTwoProxiesConverge(t *testing.T) {
	c := newCluster(t)
	a := openLog(t, c).start(t)
	b := openLog(t, c).start(t)

	var slowest time.Duration
	for i := range 20 {
		id := "token-" + strconv.Itoa(i)
		wrote := time.Now()
		if err := a.PutToken(testToken(id)); err != nil {
			t.Fatal(err)
		}
		// The writer's own sink has the change when the write returns.
		if _, ok := a.rec.token(id); !ok {
			t.Fatalf("%s: PutToken returned before the writer's sink applied it", id)
		}
		eventually(t, id+" at the other proxy", func() bool { _, ok := b.rec.token(id); return ok })
		slowest = max(slowest, time.Since(wrote))
	}
	t.Logf("slowest write-to-other-proxy of 20: %v", slowest)

	if err := b.PutUser("bob", testCreds(t, "pw")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob at the first proxy", func() bool { _, ok := a.rec.user("bob"); return ok })
	if err := b.DeleteToken("token-3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion at the first proxy", func() bool { _, ok := a.rec.token("token-3"); return !ok })
	eventually(t, "equal status", func() bool { return a.Status() == b.Status() })
	s := a.Status()
	if s.Records != 20 || s.Digest == 0 || s.Digest >= 1<<48 {
		t.Fatalf("status %+v: want 19 tokens and bob", s)
	}
	if got := a.rec.status; got != s {
		t.Errorf("metrics heard %+v, Status is %+v", got, s)
	}
}

func TestTombstonesDelete(t *testing.T) {
	c := newCluster(t)
	a := openLog(t, c).start(t)
	if err := a.PutUser("bob", testCreds(t, "pw")); err != nil {
		t.Fatal(err)
	}
	if err := a.PutToken(testToken("t1")); err != nil {
		t.Fatal(err)
	}
	before := a.Status()
	if err := a.PutUser("bob", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteToken("t1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.rec.user("bob"); ok {
		t.Fatal("bob not deleted at the sink")
	}
	if _, ok := a.rec.token("t1"); ok {
		t.Fatal("t1 not deleted at the sink")
	}
	if _, err := a.LoadUsers(); err == nil {
		t.Fatal("LoadUsers answered after Start: the log still holds the users the caches hold")
	}
	if s := a.Status(); s.Records != 0 || s.Digest != 0 || s.Offset != before.Offset+2 {
		t.Fatalf("status %+v after deleting everything (before %+v)", s, before)
	}
	// A proxy that starts now restores nothing, and the raw records are
	// null values the brokers can compact away.
	if users, _ := openLog(t, c).LoadUsers(); len(users) != 0 {
		t.Fatalf("restored %v", users)
	}
	recs := readRaw(t, c, before.Offset+2)
	if last := recs[len(recs)-1]; last.Value != nil {
		t.Fatalf("deletion is not a tombstone: %d bytes", len(last.Value))
	}
}

func TestRestoreReadsToTheStartEndOffsetThenTails(t *testing.T) {
	c := newCluster(t)
	w := openLog(t, c).start(t)
	for i := range 5 {
		if err := w.PutToken(testToken("early-" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	r := openLog(t, c)
	if s := r.Status(); s.Offset != 4 || s.Records != 5 {
		t.Fatalf("restored %+v, want through offset 4 (5 tokens)", s)
	}
	// Written after the restore: not held until Start, then applied
	// through the sink, and only those (the restored ones came from Load).
	if err := w.PutToken(testToken("late")); err != nil {
		t.Fatal(err)
	}
	if toks, _ := r.LoadTokens(); len(toks) != 5 {
		t.Fatalf("holds %d tokens before Start, want the 5 restored", len(toks))
	}
	if r.AppliesWrites() {
		t.Fatal("applies writes before it feeds any sink")
	}
	r.start(t)
	if !r.AppliesWrites() {
		t.Fatal("does not apply writes once it tails into the sinks")
	}
	eventually(t, "the late token", func() bool { _, ok := r.rec.token("late"); return ok })
	if n := r.rec.appliedCount(); n != 1 {
		t.Fatalf("sink heard %d changes, want only the late token", n)
	}
	if r.Status() != w.Status() {
		t.Fatalf("status %+v, writer %+v", r.Status(), w.Status())
	}
}

func TestHandMadeRecordsAreIgnoredAndCounted(t *testing.T) {
	c := newCluster(t)
	core, logs := observer.New(zap.InfoLevel)
	a := openLog(t, c, func(o *Options) { o.Logger = zap.New(core) }).start(t)
	if err := a.PutUser("alice", testCreds(t, "pw")); err != nil {
		t.Fatal(err)
	}
	sealed := readRaw(t, c, 0)[0].Value
	other := testKeyring(t, "k9")
	foreign, err := other.seal([]byte("user/mallory"), []byte(`{"SCRAM-SHA-512":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	own := a.o.Keys
	badToken, _ := own.seal([]byte("token/t1"), []byte(`{"token_id":"t2"}`))
	notJSON, _ := own.seal([]byte("user/eve"), []byte("not json"))
	hostile := []struct {
		key, value []byte
		reason     string
	}{
		{[]byte("user/mallory"), []byte("garbage that is not sealed"), ReasonFormat},
		{[]byte("user/mallory"), foreign, ReasonUnknownKey},
		{[]byte("user/mallory"), sealed, ReasonOpen}, // alice's value moved to another key
		{[]byte("token/alice"), sealed, ReasonOpen},  // and to another kind
		{[]byte("group/x"), sealed, ReasonKey},
		{[]byte("no-slash"), sealed, ReasonKey},
		{[]byte("token/t1"), badToken, ReasonValue},
		{[]byte("user/eve"), notJSON, ReasonValue},
	}
	for _, h := range hostile {
		produceRaw(t, c, h.key, h.value)
	}
	// A write after them: once it is back, every hostile record was read.
	if err := a.PutToken(testToken("after")); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, h := range hostile {
		want[h.reason]++
	}
	for reason, n := range want {
		if got := a.rec.ignoredCount(reason); got != n {
			t.Errorf("%s: counted %d, want %d", reason, got, n)
		}
	}
	if _, ok := a.rec.user("mallory"); ok {
		t.Fatal("a hand-made record created a user")
	}
	if _, ok := a.rec.token("alice"); ok {
		t.Fatal("a moved value created a token")
	}
	if _, ok := a.rec.user("alice"); !ok {
		t.Fatal("alice, written properly, not applied")
	}
	// Logged once each, with the offset and never the record.
	ignored := logs.FilterMessage("state record ignored").All()
	if len(ignored) != len(hostile) {
		t.Fatalf("logged %d ignored records, want %d", len(ignored), len(hostile))
	}
	for i, e := range ignored {
		f := e.ContextMap()
		if f["offset"] != int64(i+1) {
			t.Errorf("log %d: offset %v, want %d", i, f["offset"], i+1)
		}
		for _, h := range hostile {
			if s := e.Message + f["error"].(string); strings.Contains(s, string(h.value)) || strings.Contains(s, "not json") {
				t.Errorf("log %d quotes a record: %q", i, s)
			}
		}
	}
	// A proxy that restores the same topic ignores them the same way.
	b := openLog(t, c)
	if b.Status() != a.Status() {
		t.Fatalf("restored %+v, tail %+v", b.Status(), a.Status())
	}
}

func TestNothingSecretInTheClear(t *testing.T) {
	c := newCluster(t)
	a := openLog(t, c).start(t)
	creds := testCreds(t, "hunter2")
	if err := a.PutUser("bob", creds); err != nil {
		t.Fatal(err)
	}
	tok := testToken("t1")
	tok.Credentials = map[sasl.Mechanism]string{sasl.ScramSHA512: creds[sasl.ScramSHA512].StoredForm()}
	if err := a.PutToken(tok); err != nil {
		t.Fatal(err)
	}
	secret, err := a.Secret("phantom_scram")
	if err != nil {
		t.Fatal(err)
	}
	c512 := creds[sasl.ScramSHA512]
	var needles [][]byte
	for _, b := range [][]byte{[]byte("hunter2"), c512.StoredKey, c512.ServerKey, secret} {
		needles = append(needles, b, []byte(base64.StdEncoding.EncodeToString(b)))
	}
	needles = append(needles, []byte("alice"), []byte("stored_key")) // the token's owner and any stored form
	for _, r := range readRaw(t, c, 2) {
		for _, n := range needles {
			if bytes.Contains(r.Value, n) {
				t.Errorf("record %s holds %q in the clear", r.Key, n)
			}
		}
	}
}

func TestSecretIsSharedByTheFleet(t *testing.T) {
	c := newCluster(t)
	a := openLog(t, c) // not started: as at build time
	s1, err := a.Secret("phantom_scram")
	if err != nil || len(s1) != 32 {
		t.Fatalf("%x %v", s1, err)
	}
	if again, _ := a.Secret("phantom_scram"); !bytes.Equal(again, s1) {
		t.Fatal("secret changed")
	}
	a.start(t)
	b := openLog(t, c)
	if s2, err := b.Secret("phantom_scram"); err != nil || !bytes.Equal(s2, s1) {
		t.Fatalf("second proxy: %x %v, want the first's", s2, err)
	}
	// state copy's side of it.
	if err := b.PutSecret("copied", bytes.Repeat([]byte{9}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutSecret("short", []byte{1}); err == nil {
		t.Fatal("a short secret was written")
	}
	held, _ := b.StoredSecrets()
	if len(held) != 2 || !bytes.Equal(held["phantom_scram"], s1) || held["copied"][0] != 9 {
		t.Fatalf("held secrets %v", held)
	}
}

func TestKeyRotation(t *testing.T) {
	c := newCluster(t)
	old := openLog(t, c).start(t) // keys [k1]
	if err := old.PutUser("alice", testCreds(t, "a")); err != nil {
		t.Fatal(err)
	}
	rotated := openLog(t, c, func(o *Options) { o.Keys = testKeyring(t, "k2", "k1") })
	if users, _ := rotated.LoadUsers(); users["alice"] == nil {
		t.Fatal("a proxy with [k2, k1] did not restore a record sealed under k1")
	}
	rotated.start(t)
	if err := rotated.PutUser("bob", testCreds(t, "b")); err != nil {
		t.Fatal(err)
	}
	recs := readRaw(t, c, 1)
	if id := string(recs[1].Value[2 : 2+recs[1].Value[1]]); id != "k2" {
		t.Fatalf("sealed under %q, want the first key k2", id)
	}
	// The proxy that knows only k1 cannot open it: ignored, counted.
	eventually(t, "the k2 record at the k1 proxy", func() bool { return old.rec.ignoredCount(ReasonUnknownKey) == 1 })
	if _, ok := old.rec.user("bob"); ok {
		t.Fatal("opened a record under an unknown key")
	}
}

func TestBrokersDownWritesFailRetriablyAndApplyNothing(t *testing.T) {
	c := newCluster(t)
	a := openLog(t, c, func(o *Options) { o.WriteTimeout = time.Second }).start(t)
	if err := a.PutUser("alice", testCreds(t, "a")); err != nil {
		t.Fatal(err)
	}
	before, applied := a.Status(), a.rec.appliedCount()
	c.Close()

	err := a.PutToken(testToken("t1"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with the brokers down: %v, want ErrUnavailable", err)
	}
	if err := a.PutUser("bob", testCreds(t, "b")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("user write with the brokers down: %v", err)
	}
	if a.Status() != before || a.rec.appliedCount() != applied {
		t.Fatal("a failed write changed the state")
	}
	// What is known stays known: logins go on from the caches.
	if _, ok := a.rec.user("alice"); !ok {
		t.Fatal("alice lost")
	}
}

func TestRestoreRetriesUntilTheContextEnds(t *testing.T) {
	c := newCluster(t)
	addrs := c.ListenAddrs()
	c.Close()
	l, err := Open(Options{Client: []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RetryTimeout(100 * time.Millisecond)},
		Keys: testKeyring(t, "k1")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	retries := 0
	err = l.Restore(ctx, func(error) {
		if retries++; retries == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || retries != 2 {
		t.Fatalf("err %v after %d retries", err, retries)
	}
	if err := l.PutUser("x", testCreds(t, "x")); err == nil {
		t.Fatal("a write before the restore succeeded")
	}
}

// TestARacedSecretConverges: two proxies of a fleet's first start both
// create the phantom secret; the topic keeps the later, and both hold it.
func TestARacedSecretConverges(t *testing.T) {
	c := newCluster(t)
	a := openLog(t, c)
	b := openLog(t, c) // restored before a wrote: sees no secret either
	sa, err := a.Secret("phantom_scram")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Secret("phantom_scram")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sa, sb) {
		t.Fatal("no race: the second proxy found the first's secret")
	}
	if !bytes.Equal(b.HeldSecret("phantom_scram", nil), sb) {
		t.Fatal("the later writer does not hold its own secret")
	}
	a.start(t)
	eventually(t, "the first writer to hold the later secret", func() bool {
		return bytes.Equal(a.HeldSecret("phantom_scram", nil), sb)
	})
	if s, _ := openLog(t, c).Secret("phantom_scram"); !bytes.Equal(s, sb) {
		t.Fatal("a restart does not restore the topic's secret")
	}
}

// TestRestoreEndsOnOffsetsWithoutRecords: the last offsets below the end
// may hold no record a reader gets (here an aborted transaction: its record
// and its marker; in production also records compaction removed). The
// restore still ends, and the aborted record, though sealed, is not applied.
func TestRestoreEndsOnOffsetsWithoutRecords(t *testing.T) {
	c := newCluster(t)
	w := openLog(t, c).start(t)
	if err := w.PutUser("alice", testCreds(t, "a")); err != nil {
		t.Fatal(err)
	}
	value, err := w.o.Keys.seal([]byte("user/mallory"), []byte(`{"SCRAM-SHA-512":"`+testCreds(t, "m")[sasl.ScramSHA512].StoredForm()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(DefaultTopic), kgo.TransactionalID("aborter"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte("user/mallory"), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(mustClient(t, c)).ListEndOffsets(ctx, DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(DefaultTopic, 0)
	if end.Offset < 3 {
		t.Fatalf("end offset %d: the aborted transaction left no offsets", end.Offset)
	}
	r := openLog(t, c) // fails the test if the restore does not end
	users, _ := r.LoadUsers()
	if len(users) != 1 || users["alice"] == nil {
		t.Fatalf("restored users %v", users)
	}
	if s := r.Status(); s.Offset != end.Offset-1 || s.Records != 1 {
		t.Fatalf("restored %+v, want through offset %d with alice alone", s, end.Offset-1)
	}
	// Writes go on after it.
	r.start(t)
	if err := r.PutUser("bob", testCreds(t, "b")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob at the writer", func() bool { _, ok := w.rec.user("bob"); return ok })
	if _, ok := w.rec.user("mallory"); ok {
		t.Fatal("the tail applied an aborted record")
	}
}
