package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/dtoken"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/internal/statelog"
)

// stateTokenKey is the proxies' delegation token key in the state phase.
const stateTokenKey = "bench-state-token-key"

// benchState starts the built proxy with state.backend kafka on a kfake
// state topic holding n users and n tokens, for each n of sizes, and
// returns the section of the report: how long from the process's start
// until its client listener accepted (the proxy binds it only once the
// topic is restored and the caches are built), and the memory it then
// holds; then, with all of them running, their token login rates
// (tokenLogins).
func benchState(dir, certFile, keyFile string, clientTLS *tls.Config, sizes []int) (string, error) {
	if err := buildProxy(dir); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nstate.backend kafka: the proxy started on a state topic (kfake, one broker, in the bench process) holding n users and n tokens\n")
	fmt.Fprintf(&b, "ready: from the process's start until its listener accepts; CPU: the proxy's CPU seconds by then; memory once ready; load average %s\n", loadAvg())
	fmt.Fprintf(&b, "%-40s %10s %10s %10s %16s %8s\n", "users and tokens (n)", "ready (s)", "CPU (s)", "RSS (MiB)", "live heap (MiB)", "target")
	var proxies []*stateProxy
	defer func() {
		for _, p := range proxies {
			p.stop()
		}
	}()
	for _, n := range sizes {
		fmt.Fprintf(os.Stderr, "bench: state topic with %d users and %d tokens\n", n, n)
		r, p, err := stateStart(filepath.Join(dir, "state-"+strconv.Itoa(n)), certFile, keyFile, clientTLS, n)
		if err != nil {
			return "", fmt.Errorf("state phase, n=%d: %w", n, err)
		}
		proxies = append(proxies, p)
		fmt.Fprintf(&b, "%-40d %10s %10s %10s %16s %8s\n", n, fmtNum(r.ready.Seconds()), fmtNum(r.cpu), fmtNum(r.rss), fmtNum(r.live), "<= 10 s")
	}
	b.WriteString(tokenLogins(proxies))
	return b.String(), nil
}

// started is one start of the state phase.
type started struct {
	ready          time.Duration
	cpu, rss, live float64 // CPU seconds until ready; MiB once ready
}

// stateProxy is a proxy running on a state topic of n users and n tokens.
type stateProxy struct {
	n      int
	t      target
	tokens *tokenClient // logs in with the topic's tokens
	stop   func()       // stops the proxy, then its cluster
	next   atomic.Int64 // the index of the next token to log in with
}

// stateStart fills a new kfake cluster's state topic with n users and n
// tokens, starts the proxy on it and reports the time to ready, and the
// proxy's resident memory and live heap once ready. The proxy is left
// running; the caller stops it.
func stateStart(dir, certFile, keyFile string, clientTLS *tls.Config, n int) (r started, p *stateProxy, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, nil, err
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.ListenFn(func(n, _ string) (net.Listener, error) { return net.Listen(n, "127.0.0.1:0") }))
	if err != nil {
		return r, nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	key := make([]byte, statelog.KeySize)
	if _, err := rand.Read(key); err != nil {
		return r, nil, err
	}
	keyLine := "k1 " + base64.StdEncoding.EncodeToString(key) + "\n"
	keyFileState := filepath.Join(dir, "state.key")
	if err := os.WriteFile(keyFileState, []byte(keyLine), 0o600); err != nil {
		return r, nil, err
	}
	keys, err := statelog.ParseKeyring([]byte(keyLine))
	if err != nil {
		return r, nil, err
	}
	password, err := fillState(c.ListenAddrs()[0], keys, n)
	if err != nil {
		return r, nil, err
	}
	start := time.Now()
	addr, debug, pid, stop, err := startProxy(dir, certFile, keyFile, c.ListenAddrs()[0], func(cfg *config.Config) {
		cfg.State = config.State{Backend: "kafka", Kafka: config.StateKafka{Topic: statelog.DefaultTopic,
			ReplicationFactor: 1, MinInsyncReplicas: 1, KeyFile: keyFileState}}
		cfg.Tokens.SecretKey = stateTokenKey
	})
	if err != nil {
		return r, nil, err
	}
	r.ready, r.cpu = time.Since(start), cpuSeconds(pid)
	time.Sleep(time.Second) // let the start's garbage be collected
	t := target{name: "proxy n=" + strconv.Itoa(n), addr: addr, tls: clientTLS, pid: pid, debug: debug}
	r.rss, r.live = float64(rssKiB(pid))/1024, t.liveKiB()/1024
	return r, &stateProxy{n: n, t: t, tokens: newTokenClient(password), stop: func() { stop(); c.Close() }}, nil
}

// stateTokenID is the id of the state topic's i-th token.
func stateTokenID(i int) string { return fmt.Sprintf("bench-token-%010d", i) }

// nopSinks takes the state log's changes and drops them.
type nopSinks struct{}

func (nopSinks) ApplyToken(dtoken.Info)                               {}
func (nopSinks) ForgetToken(string)                                   {}
func (nopSinks) ApplyUser(string, map[sasl.Mechanism]sasl.Credential) {}

// fillState writes n users and n tokens into the state topic at addr, as
// a proxy writes them (sealed under keys, each write read back). Deriving
// 100,000 SCRAM credentials and issuing 100,000 tokens for real would take
// minutes: the users share one pair of derived credentials and the tokens
// are copies of one token, under their own ids and one of 500 owners;
// every record is still sealed, restored and decoded on its own. It
// returns the password of every token: the base64 of the copied token's
// HMAC, from which the stored credentials of all copies were derived.
func fillState(addr string, keys *statelog.Keyring, n int) (string, error) {
	l, err := statelog.Open(statelog.Options{Client: []kgo.Opt{kgo.SeedBrokers(addr)}, Keys: keys,
		ReplicationFactor: 1, MinInsyncReplicas: 1, WriteTimeout: time.Minute})
	if err != nil {
		return "", err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := l.Restore(ctx, nil); err != nil {
		return "", err
	}
	if err := l.Start(ctx, nopSinks{}, nopSinks{}); err != nil {
		return "", err
	}
	m, err := dtoken.New(dtoken.Options{SecretKey: stateTokenKey})
	if err != nil {
		return "", err
	}
	tok, err := m.Create(dtoken.Caller{Principal: dtoken.Principal{Type: "User", Name: "owner0"}}, "", "", nil, 0)
	if err != nil {
		return "", err
	}
	creds := map[sasl.Mechanism]sasl.Credential{}
	for _, mech := range []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256} {
		if creds[mech], err = sasl.DeriveCredential(mech, "pw", []byte("bench-salt-0123456789abc"), 4096); err != nil {
			return "", err
		}
	}
	// Writes wait for their read-back: many at once.
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < 2*n; i = int(next.Add(1)) - 1 {
				var err error
				if i < n {
					err = l.PutUser(fmt.Sprintf("user%06d", i), creds)
				} else {
					rec := tok.Token
					rec.ID = stateTokenID(i - n)
					rec.Owner.Name = "owner" + strconv.Itoa(i%500)
					err = l.PutToken(rec)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return base64.StdEncoding.EncodeToString(tok.HMAC), errors.Join(errs...)
}
