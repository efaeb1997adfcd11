package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

var (
	tokenRounds = flag.Int("token-rounds", 5, "state phase: interleaved token-login rounds per proxy (the median is reported)")
	tokenRound  = flag.Duration("token-round", 4*time.Second, "state phase: length of each token-login round")
)

// tokenClient is the client side of SCRAM-SHA-512 token logins as Kafka's
// clients make them: the client-first-message carries the extension
// tokenauth=true, the user name is the token id and the password the
// base64 of the token's HMAC. Every token of a state topic shares one
// password and one salt (tokens are copies of one token), so the salted
// password is derived once per salt and iteration count and then reused:
// the client's PBKDF2 would otherwise be most of what is measured.
type tokenClient struct {
	password string
	mu       sync.Mutex
	salted   map[string][]byte // by salt and iteration count
}

func newTokenClient(password string) *tokenClient {
	return &tokenClient{password: password, salted: map[string][]byte{}}
}

// saltedPassword is the client's salted password for salt and iters.
func (tc *tokenClient) saltedPassword(salt []byte, iters int) ([]byte, error) {
	key := string(salt) + "/" + strconv.Itoa(iters)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if sp, ok := tc.salted[key]; ok {
		return sp, nil
	}
	sp, err := sasl.SaltedPassword(sasl.ScramSHA512, tc.password, salt, iters)
	if err == nil {
		tc.salted[key] = sp
	}
	return sp, err
}

// login opens a TLS connection to t and logs in with token id: SaslHandshake
// v1, then both SaslAuthenticate rounds of SCRAM-SHA-512 with
// tokenauth=true. It succeeds only if both rounds answer error code 0 and
// the server-final-message carries the server signature this client
// computes. When then is not nil, one round trip of it follows, and its
// response is returned. The connection is closed before login returns.
func (tc *tokenClient) login(t target, id string, then kmsg.Request) (kmsg.Response, error) {
	w, err := dialWire(t)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.handshake("SCRAM-SHA-512"); err != nil {
		return nil, err
	}
	var nb [24]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, err
	}
	nonce := base64.RawStdEncoding.EncodeToString(nb[:])
	bare := "n=" + saslName(id) + ",r=" + nonce + ",tokenauth=true"
	first, err := w.authenticate([]byte("n,," + bare))
	if err != nil {
		return nil, err
	}
	var serverNonce, salt64, iterField string
	for _, f := range strings.Split(string(first), ",") {
		switch k, v, _ := strings.Cut(f, "="); k {
		case "r":
			serverNonce = v
		case "s":
			salt64 = v
		case "i":
			iterField = v
		}
	}
	iters, err := strconv.Atoi(iterField)
	salt, saltErr := base64.StdEncoding.DecodeString(salt64)
	if err != nil || saltErr != nil || iters < 1 || iters > 16384 ||
		len(serverNonce) <= len(nonce) || !strings.HasPrefix(serverNonce, nonce) {
		return nil, errors.New("login failed: malformed server-first-message")
	}
	sp, err := tc.saltedPassword(salt, iters)
	if err != nil {
		return nil, err
	}
	clientKey := hmacSHA512(sp, "Client Key")
	storedKey := sha512.Sum512(clientKey)
	final := "c=biws,r=" + serverNonce
	authMessage := bare + "," + string(first) + "," + final
	proof := make([]byte, sha512.Size)
	subtle.XORBytes(proof, clientKey, hmacSHA512(storedKey[:], authMessage))
	last, err := w.authenticate([]byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	if err != nil {
		return nil, err
	}
	want := "v=" + base64.StdEncoding.EncodeToString(hmacSHA512(hmacSHA512(sp, "Server Key"), authMessage))
	if !hmac.Equal(last, []byte(want)) {
		return nil, errors.New("login failed: the server-final-message does not carry the expected server signature")
	}
	return w.then(then)
}

func hmacSHA512(key []byte, msg string) []byte {
	h := hmac.New(sha512.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// saslName escapes a SCRAM user name: '=' as =3D and ',' as =2C.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// checkSession logs in with p's next token and sends ApiVersions, which
// the proxy relays upstream once the client is authenticated: the answer
// shows the session works past the login.
func (p *stateProxy) checkSession() error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "scram-proxy-bench", "1"
	resp, err := p.tokens.login(p.t, p.nextToken(), req)
	if err != nil {
		return err
	}
	if r := resp.(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 || len(r.ApiKeys) == 0 {
		return fmt.Errorf("ApiVersions after a token login: error code %d, %d API keys", r.ErrorCode, len(r.ApiKeys))
	}
	return nil
}

// nextToken is the id of the next of p's tokens, in turn.
func (p *stateProxy) nextToken() string {
	return stateTokenID(int((p.next.Add(1) - 1) % int64(p.n)))
}

// tokenRoundResult is one round of token logins against one proxy.
type tokenRoundResult struct {
	ok, failed   int64
	firstErr     error
	rate, perCPU float64 // logins/s; logins per CPU second of the proxy
	busy         cores   // the bench process's (client, kfake) and the proxy's
}

// loginRound logs in with p's tokens in turn for d over 4 workers, each
// login on a new TLS connection.
func (p *stateProxy) loginRound(d time.Duration) tokenRoundResult {
	var r tokenRoundResult
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	cpu0, start, busy := cpuSeconds(p.t.pid), time.Now(), meter(p.t)
	end := start.Add(d)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if _, err := p.tokens.login(p.t, p.nextToken(), nil); err != nil {
					if failed.Add(1) == 1 {
						mu.Lock()
						r.firstErr = err
						mu.Unlock()
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	secs, cpu := time.Since(start).Seconds(), cpuSeconds(p.t.pid)-cpu0
	r.busy = busy()
	r.ok, r.failed = ok.Load(), failed.Load()
	r.rate = float64(r.ok) / secs
	if cpu > 0 {
		r.perCPU = float64(r.ok) / cpu
	}
	return r
}

// tokenLogins measures the token login rate of the running proxies ps
// (the first the baseline, with the fewest tokens) in -token-rounds
// interleaved rounds of -token-round each: in a round every proxy in turn
// (the first one alternates) gets 4 workers logging in with its tokens in
// turn, a new TLS connection per login, so every proxy is measured under
// the same load on the machine. Before each round, untimed, one token login
// per proxy is followed by ApiVersions to show the session works. It
// returns the section of the report.
func tokenLogins(ps []*stateProxy) string {
	loadBefore := loadAvg()
	results := make([][]tokenRoundResult, len(ps))
	checks := make([]int, len(ps))
	checkErrs := make([]error, len(ps)) // the first failed check's
	for round := range *tokenRounds {
		fmt.Fprintf(os.Stderr, "bench: token logins, round %d of %d\n", round+1, *tokenRounds)
		for k := range ps {
			i := k
			if round%2 == 1 {
				i = len(ps) - 1 - k
			}
			p := ps[i]
			if err := p.checkSession(); err != nil {
				if checkErrs[i] == nil {
					checkErrs[i] = err
				}
			} else {
				checks[i]++
			}
			// With -profile, every round: one round's few seconds of
			// samples are too few to compare; merge them with pprof.
			wait := p.t.cpuProfileFor(fmt.Sprintf("cpu-token-logins-%d-round%d.pprof", p.n, round+1), *tokenRound)
			results[i] = append(results[i], p.loginRound(*tokenRound))
			wait()
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\ntoken logins with the n tokens, all proxies running at once: each login a new TLS connection, SaslHandshake and SCRAM-SHA-512 with\n")
	fmt.Fprintf(&b, "tokenauth=true (token id as user name, base64 of its HMAC as password, the server signature checked), 4 at a time, each with the\n")
	fmt.Fprintf(&b, "proxy's next token in turn (with %d tokens each login is that token's first since the start); %d interleaved rounds of %s, the\n",
		ps[len(ps)-1].n, *tokenRounds, *tokenRound)
	fmt.Fprintf(&b, "proxies one after the other in a round, which first alternates; load average %s before, %s after\n", loadBefore, loadAvg())
	fmt.Fprintf(&b, "cores busy: the proxy's, and the bench process's (the client and the kfakes) while it measured that proxy\n")
	fmt.Fprintf(&b, "%-10s", "round")
	for _, p := range ps {
		fmt.Fprintf(&b, " %18s %15s %11s %11s", fmt.Sprintf("n=%d logins/s", p.n), "per proxy CPU s", "proxy cores", "bench cores")
	}
	b.WriteString("\n")
	for round := range *tokenRounds {
		fmt.Fprintf(&b, "%-10d", round+1)
		for i := range ps {
			r := results[i][round]
			fmt.Fprintf(&b, " %18s %15s %11s %11s", fmtNum(r.rate), fmtNum(r.perCPU), fmtNum(r.busy.proxy), fmtNum(r.busy.bench))
		}
		b.WriteString("\n")
	}
	column := func(i int, v func(tokenRoundResult) float64) []float64 {
		var out []float64
		for _, r := range results[i] {
			out = append(out, v(r))
		}
		return out
	}
	rate := func(r tokenRoundResult) float64 { return r.rate }
	perCPU := func(r tokenRoundResult) float64 { return r.perCPU }
	fmt.Fprintf(&b, "%-10s", "median")
	for i := range ps {
		fmt.Fprintf(&b, " %18s %15s %11s %11s", fmtNum(median(column(i, rate))), fmtNum(median(column(i, perCPU))),
			fmtNum(median(column(i, func(r tokenRoundResult) float64 { return r.busy.proxy }))),
			fmtNum(median(column(i, func(r tokenRoundResult) float64 { return r.busy.bench }))))
	}
	b.WriteString("\n")
	for i := 1; i < len(ps); i++ {
		for _, m := range []struct {
			name string
			v    func(tokenRoundResult) float64
		}{{"logins/s", rate}, {"logins per proxy CPU second", perCPU}} {
			var perRound []float64 // the same round's figures, side by side
			for round := range *tokenRounds {
				if base := m.v(results[0][round]); base > 0 {
					perRound = append(perRound, m.v(results[i][round])/base)
				}
			}
			ratio := 0.0
			if base := median(column(0, m.v)); base > 0 {
				ratio = median(column(i, m.v)) / base
			}
			fmt.Fprintf(&b, "ratio n=%d / n=%d, %-28s %.3fx of the medians; per round: median %.3fx, %s   target >= 0.90x\n",
				ps[i].n, ps[0].n, m.name+":", ratio, median(perRound), spread(perRound))
		}
	}
	for i, p := range ps {
		var ok, failed int64
		var firstErr error
		for _, r := range results[i] {
			ok, failed = ok+r.ok, failed+r.failed
			if firstErr == nil {
				firstErr = r.firstErr
			}
		}
		fmt.Fprintf(&b, "n=%d: %d logins succeeded, %d failed", p.n, ok, failed)
		if firstErr != nil {
			fmt.Fprintf(&b, " (FAILED LOGINS: the rates count only the logins that succeeded; first: %v)", firstErr)
		}
		fmt.Fprintf(&b, "; session checks (a token login, then ApiVersions relayed upstream): %d of %d ok", checks[i], *tokenRounds)
		if checkErrs[i] != nil {
			fmt.Fprintf(&b, " (first failure: %v)", checkErrs[i])
		}
		fmt.Fprintf(&b, "; live heap after the logins %s MiB\n", fmtNum(p.t.liveKiB()/1024))
	}
	return b.String()
}

// spread is the lowest and highest of v, as ratios.
func spread(v []float64) string {
	if len(v) == 0 {
		return "none"
	}
	return fmt.Sprintf("%.3fx-%.3fx", slices.Min(v), slices.Max(v))
}
