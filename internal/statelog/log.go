package statelog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// quietPeriod is how long catchUp waits for a record below its target
// before it takes the rest of the range to hold none (a compacted tail).
// Twice the consumer's fetch wait.
const quietPeriod = 2 * time.Second

// metadataMinAge lets the clients see the state topic soon after it is
// created: kadm answers from kgo's metadata cache, kept this long.
const metadataMinAge = 250 * time.Millisecond

// DefaultTopic is the state topic's default name.
const DefaultTopic = "__scram_proxy_state"

// ErrUnavailable is the cause of every write the state topic did not take
// in time: the brokers are unreachable, refuse the write, or the record was
// not read back within Options.WriteTimeout. Nothing was applied by this
// proxy; a record that did reach the topic is applied later by every proxy,
// like any other. internal/localapi answers it with REQUEST_TIMED_OUT,
// Kafka's retriable error for a metadata write it could not complete.
var ErrUnavailable = errors.New("state topic unavailable")

// TokenSink receives token changes read from the topic
// (dtoken.Manager implements it). Calls come from one goroutine, in topic
// order, and must be cheap and idempotent.
type TokenSink interface {
	ApplyToken(dtoken.Info)
	ForgetToken(id string)
}

// UserSink receives user changes read from the topic (credstore.Admin
// implements it); no credentials means the user is deleted. Calls come
// from one goroutine, in topic order.
type UserSink interface {
	ApplyUser(user string, creds map[sasl.Mechanism]sasl.Credential)
}

// Metrics hears about the log; telemetry.Prom implements it.
type Metrics interface {
	// StateRecordIgnored counts a record that did not open or decode, by
	// reason (the Reason constants).
	StateRecordIgnored(reason string)
	// StateApplied reports the offset of the last record read and the
	// state then held (the fields of Status).
	StateApplied(offset int64, records int, digest uint64)
}

// Options configures Open.
type Options struct {
	// Client holds the connection options (seed brokers, TLS, SASL) for
	// the kgo clients the Log creates; required.
	Client []kgo.Opt
	// Topic is the state topic (default DefaultTopic).
	Topic string
	// ReplicationFactor and MinInsyncReplicas are what the topic is
	// created with and checked against (default 3 and 2).
	ReplicationFactor int16
	MinInsyncReplicas int
	// Keys seal and open the records; required.
	Keys *Keyring
	// WriteTimeout bounds a write from produce to read-back (default 10s).
	WriteTimeout time.Duration
	// Logger and Metrics may be nil.
	Logger  *zap.Logger
	Metrics Metrics

	_ struct{}
}

func (o *Options) withDefaults() {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = 3
	}
	if o.MinInsyncReplicas == 0 {
		o.MinInsyncReplicas = 2
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
}

type nopMetrics struct{}

func (nopMetrics) StateRecordIgnored(string)       {}
func (nopMetrics) StateApplied(int64, int, uint64) {}

// Status is what a Log holds, to compare proxies: two proxies that have
// read the same topic hold the same Records and Digest.
type Status struct {
	// Offset is the offset of the last record read, -1 before any.
	Offset int64
	// Records counts the live keys held (users, tokens, secrets).
	Records int
	// Digest is an order-independent 48-bit digest of the held records:
	// the XOR, over every live key, of a hash of the key and its sealed
	// value as stored in the topic. It reveals nothing of the values.
	Digest uint64
}

// Log is the state topic: restored once, then tailed. Safe for concurrent
// use once Restore has returned; Restore and Start are called once, in that
// order.
type Log struct {
	o    Options
	prod *kgo.Client // produces and administers
	cons *kgo.Client // reads partition 0 from the start; created by Restore

	mu       sync.Mutex
	tokens   map[string]dtoken.Info
	users    map[string]map[sasl.Mechanism]sasl.Credential
	secrets  map[string][]byte
	hashes   map[recordName]uint64 // record key → hash, for Status.Digest
	digest   uint64
	next     int64         // every record below it has been applied
	advanced chan struct{} // closed and replaced when next moves
	restored bool
	tailing  bool     // Start has begun the tail: writes wait for it
	topicID  [16]byte // from Restore

	// catchMu serializes catchUp, which reads the consumer before Start.
	catchMu sync.Mutex

	stop context.CancelFunc
	done chan struct{}
}

// Open builds a Log; nothing is read or written until Restore.
func Open(o Options) (*Log, error) {
	o.withDefaults()
	if o.Keys == nil {
		return nil, errors.New("statelog: no keys")
	}
	opts := append(append([]kgo.Opt(nil), o.Client...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // with idempotence, kgo's default
		kgo.RecordDeliveryTimeout(o.WriteTimeout),
		kgo.ProducerLinger(0),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.MetadataMinAge(metadataMinAge),
	)
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("state topic client: %w", err)
	}
	return &Log{
		o: o, prod: prod,
		tokens: map[string]dtoken.Info{}, users: map[string]map[sasl.Mechanism]sasl.Credential{},
		secrets: map[string][]byte{}, hashes: map[recordName]uint64{},
		advanced: make(chan struct{}),
	}, nil
}

// Close stops the tail and closes the clients. Safe to call more than once.
func (l *Log) Close() {
	l.mu.Lock()
	stop, done := l.stop, l.done
	l.stop = nil
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if l.cons != nil {
		l.cons.Close()
	}
	l.prod.Close()
}

// Restore makes sure the topic exists with the right settings, then reads
// it up to the end offset it has now, keeping the records in memory for
// LoadTokens, LoadUsers and Secret. A *TopicError (wrong settings) is
// returned at once; other failures (brokers unreachable) are retried with
// backoff, each reported to retry (which may be nil), until ctx ends.
func (l *Log) Restore(ctx context.Context, retry func(error)) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := l.restoreOnce(ctx)
		var te *TopicError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &te):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("restore state topic: %w", ctx.Err())
		}
		if retry != nil {
			retry(err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("restore state topic: %w (last error: %v)", ctx.Err(), err)
		}
	}
}

func (l *Log) restoreOnce(ctx context.Context) error {
	if err := l.ensureTopic(ctx); err != nil {
		return err
	}
	ends, err := kadm.NewClient(l.prod).ListEndOffsets(ctx, l.o.Topic)
	if err != nil {
		return fmt.Errorf("state topic end offset: %w", err)
	}
	end, ok := ends.Lookup(l.o.Topic, 0)
	if !ok {
		return fmt.Errorf("state topic end offset: partition 0 not listed")
	}
	if end.Err != nil {
		return fmt.Errorf("state topic end offset: %w", end.Err)
	}
	if l.cons == nil {
		opts := append(append([]kgo.Opt(nil), l.o.Client...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{l.o.Topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(time.Second),
			// Only committed records: a transaction someone else aborted
			// never applies (the proxy itself never writes in one).
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.MetadataMinAge(metadataMinAge),
		)
		if l.cons, err = kgo.NewClient(opts...); err != nil {
			return fmt.Errorf("state topic client: %w", err)
		}
	}
	if err := l.catchUp(ctx, end.Offset); err != nil {
		return err
	}
	l.mu.Lock()
	l.restored = true
	s := l.statusLocked()
	l.mu.Unlock()
	l.o.Logger.Info("state restored", zap.String("topic", l.o.Topic), zap.Int64("end_offset", end.Offset),
		zap.Int("records", s.Records))
	return nil
}

// catchUp reads records into memory until every offset below target has
// been applied. Only before Start: afterwards the tail owns the consumer.
func (l *Log) catchUp(ctx context.Context, target int64) error {
	l.catchMu.Lock()
	defer l.catchMu.Unlock()
	for {
		l.mu.Lock()
		next := l.next
		l.mu.Unlock()
		if next >= target {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, quietPeriod)
		fs := l.cons.PollFetches(pctx)
		cancel()
		if err := fetchError(ctx, fs); err != nil {
			return err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			// Records already on the brokers come back within the fetch
			// wait; none did, so the offsets left below target hold none a
			// reader gets (compacted away, transaction markers, aborted
			// writes). Stopping here is safe even if one was only slow: the
			// consumer has not passed it, and the tail applies it.
			l.o.Logger.Info("state topic: no records left below the end offset", zap.Int64("from", next), zap.Int64("end_offset", target))
			l.advance(target - 1)
			return nil
		}
		fs.EachError(func(_ string, _ int32, err error) {
			l.o.Logger.Warn("state topic read failed; retrying", zap.Error(err))
		})
		fs.EachRecord(func(r *kgo.Record) { l.apply(r, nil, nil) })
	}
}

// fetchError returns the error that ends a poll: the context's, or the
// client's closing. Other fetch errors are transient (kgo retries them) and
// only logged by the caller.
func fetchError(ctx context.Context, fs kgo.Fetches) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if fs.IsClientClosed() {
		return kgo.ErrClientClosed
	}
	return nil
}

// Start begins tailing the topic from where Restore ended: every record
// read from now on is applied to memory and then handed to tokens and users
// (either may be nil). It returns at once; Close stops the tail.
func (l *Log) Start(ctx context.Context, tokens TokenSink, users UserSink) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.restored || l.tailing {
		return errors.New("statelog: Start needs a Restore first, and runs once")
	}
	ctx, l.stop = context.WithCancel(ctx)
	l.done = make(chan struct{})
	l.tailing = true
	// The caches were built from the restored users and tokens and hear
	// every later change: the log stops holding a second copy of them
	// (with 100,000 of each, about 250 MiB).
	l.tokens, l.users = nil, nil
	go l.tail(ctx, tokens, users)
	return nil
}

func (l *Log) tail(ctx context.Context, tokens TokenSink, users UserSink) {
	defer close(l.done)
	for {
		fs := l.cons.PollFetches(ctx)
		if fetchError(ctx, fs) != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			l.o.Logger.Warn("state topic read failed; retrying", zap.Error(err))
		})
		fs.EachRecord(func(r *kgo.Record) { l.apply(r, tokens, users) })
	}
}

// apply applies one record to memory, then to the sinks, then marks it
// read, so a writer waiting for its record sees its sinks already called. A
// record that does not decode is ignored, counted and logged with its
// offset only.
func (l *Log) apply(r *kgo.Record, tokens TokenSink, users UserSink) {
	e, err := l.o.Keys.decode(r.Key, r.Value)
	if err != nil {
		reason := ReasonFormat
		var re *RecordError
		if errors.As(err, &re) {
			reason = re.Reason
		}
		l.o.Metrics.StateRecordIgnored(reason)
		l.o.Logger.Warn("state record ignored", zap.Int64("offset", r.Offset), zap.String("reason", reason), zap.Error(err))
		l.advance(r.Offset)
		return
	}
	key := recordName{e.Kind, e.ID}
	l.mu.Lock()
	switch {
	case e.Kind == KindToken && e.Delete:
		delete(l.tokens, e.ID)
	case e.Kind == KindToken && l.tokens != nil:
		l.tokens[e.ID] = e.Token
	case e.Kind == KindUser && e.Delete:
		delete(l.users, e.ID)
	case e.Kind == KindUser && l.users != nil:
		l.users[e.ID] = e.User
	case e.Kind == KindSecret && e.Delete:
		delete(l.secrets, e.ID)
	case e.Kind == KindSecret:
		l.secrets[e.ID] = e.Secret
	}
	l.digest ^= l.hashes[key]
	delete(l.hashes, key)
	if !e.Delete {
		h := recordHash(r.Key, r.Value)
		l.hashes[key] = h
		l.digest ^= h
	}
	l.mu.Unlock()

	switch {
	case e.Kind == KindToken && tokens != nil && e.Delete:
		tokens.ForgetToken(e.ID)
	case e.Kind == KindToken && tokens != nil:
		tokens.ApplyToken(e.Token)
	case e.Kind == KindUser && users != nil:
		users.ApplyUser(e.ID, e.User) // nil for a tombstone: deleted
	}
	l.advance(r.Offset)
}

// recordHash is a record's 48-bit share of Status.Digest.
func recordHash(key, value []byte) uint64 {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write(key)
	h.Write(value)
	return binary.BigEndian.Uint64(h.Sum(nil)) >> 16
}

// advance marks every offset up to off as applied and wakes the writers.
func (l *Log) advance(off int64) {
	l.mu.Lock()
	if off+1 > l.next {
		l.next = off + 1
	}
	close(l.advanced)
	l.advanced = make(chan struct{})
	s := l.statusLocked()
	l.mu.Unlock()
	l.o.Metrics.StateApplied(s.Offset, s.Records, s.Digest)
}

// Status returns the offset read up to and a digest of the state held.
func (l *Log) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statusLocked()
}

func (l *Log) statusLocked() Status {
	return Status{Offset: l.next - 1, Records: len(l.hashes), Digest: l.digest}
}

// write produces kind/id (value nil: a tombstone) with acks=all and
// idempotence and returns once this proxy has applied the record, so its
// sinks already hold the change. Any failure wraps ErrUnavailable.
func (l *Log) write(kind, id string, plaintext []byte) error {
	if id == "" {
		return errEmptyID
	}
	l.mu.Lock()
	restored := l.restored
	l.mu.Unlock()
	if !restored {
		return errors.New("statelog: write before Restore")
	}
	key := recordKey(kind, id)
	var value []byte
	if plaintext != nil {
		var err error
		if value, err = l.o.Keys.seal(key, plaintext); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.o.WriteTimeout)
	defer cancel()
	// Not ProduceSync: with idempotence, kgo keeps a record it has sent
	// until the brokers answer, whatever the context says, and a write
	// must fail in time. A record abandoned here may still reach the topic
	// later; every proxy then applies it, as any other.
	type result struct {
		r   *kgo.Record
		err error
	}
	done := make(chan result, 1)
	l.prod.Produce(ctx, &kgo.Record{Key: key, Value: value, Partition: 0}, func(r *kgo.Record, err error) {
		done <- result{r, err}
	})
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	if res.err != nil {
		return fmt.Errorf("%w: write %s record: %w", ErrUnavailable, kind, res.err)
	}
	r := res.r
	if err := l.waitApplied(ctx, r.Offset); err != nil {
		return fmt.Errorf("%w: %s record written at offset %d but not read back: %w", ErrUnavailable, kind, r.Offset, err)
	}
	return nil
}

// waitApplied waits until the record at off has been applied: by the tail
// once Start has run, else by reading it here.
func (l *Log) waitApplied(ctx context.Context, off int64) error {
	for {
		l.mu.Lock()
		next, ch, tailing := l.next, l.advanced, l.tailing
		l.mu.Unlock()
		switch {
		case next > off:
			return nil
		case !tailing:
			if err := l.catchUp(ctx, off+1); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
