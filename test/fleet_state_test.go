package test

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	isasl "github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// propagationBound is the acceptance bound on a change made through one
// proxy reaching the others (issue 19: p99 under 1 s on this machine).
const propagationBound = time.Second

// propagationDeadline is how long a change is polled for before the test
// gives up: well past the bound, so a slow change is measured, not cut off.
const propagationDeadline = 15 * time.Second

// TestFleetSharedState is issue 19's acceptance 1 and 3 on kfake.
func TestFleetSharedState(t *testing.T) {
	fleetAcceptance(t, startStateFleet(t, stateFleetOptions{}), false)
}

// TestRealKafkaFleetSharedState is issue 19's acceptance 1 and 3 on the
// real three-node Kafka cluster, with one more user added by Kafka's
// kafka-configs tool.
func TestRealKafkaFleetSharedState(t *testing.T) {
	fleetAcceptance(t, startStateFleet(t, stateFleetOptions{kafka: realKafka(t, 3)}), true)
}

// fleetAcceptance runs issue 19's acceptance 1 and 3 on one fleet: changes
// propagate (fleetPropagation); the topic read from the brokers holds no
// secret of the users and tokens made (checkSealed); records made by hand
// are ignored and counted (checkInjected); no proxy shows the topic in
// Metadata (checkHidden) or lets a client write into or delete it
// (checkUnreachable).
func fleetAcceptance(t *testing.T, f *stateFleet, javaCLI bool) {
	secrets := fleetPropagation(t, f, javaCLI)
	// A user whose salt the test knows, and a live token.
	salt := []byte("dave-salt-0123456789")
	f.addUser(t, 1, "dave", "dave-secret", salt)
	secrets = append(secrets, userSecrets(t, "dave", "dave-secret", salt, 4096)...)
	tok, err := adminVia(t, f.proxies[2], "bob").CreateDelegationToken(ctxT(t, 30*time.Second), kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("create a token through proxy 2: %v", err)
	}
	secrets = append(secrets, tokenSecrets(t, f.proxies[2], tok)...)
	f.checkSealed(t, secrets)
	f.checkInjected(t)
	f.checkHidden(t)
	f.checkUnreachable(t)
}

// fleetPropagation: a token created through proxy 0 logs in through 1 and
// 2; a user added through proxy 1 logs in through 0 and 2; the token
// expired and the user deleted through proxy 2 log in nowhere. Each change
// must show at the proxy that made it at once (it answers only after
// reading its own record back) and at the others within propagationBound;
// the observed times are logged, and the test fails with them when over.
//
// It returns the secrets of the token and user it made.
func fleetPropagation(t *testing.T, f *stateFleet, javaCLI bool) []secret {
	ctx := ctxT(t, 3*time.Minute)
	p := f.proxies

	tok, err := adminVia(t, p[0], "alice").CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("create a token through proxy 0: %v", err)
	}
	t0 := time.Now()
	f.expectEverywhere(t, "token created through proxy 0", 0, tokenMech(tok), t0, true)
	secrets := tokenSecrets(t, p[0], tok)

	user, password := fmt.Sprintf("carol-%d", time.Now().UnixNano()%1e6), "carol-secret"
	salt := []byte("carol-salt-0123456789")
	f.addUser(t, 1, user, password, salt)
	t0 = time.Now()
	secrets = append(secrets, userSecrets(t, user, password, salt, 4096)...)
	userMech := scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	f.expectEverywhere(t, "user added through proxy 1", 1, userMech, t0, true)

	if javaCLI {
		// Kafka's own tool too. Its AdminClient sends the request to a
		// broker of its choosing, any proxy: their audit logs say which.
		java, javaPass := user+"-cli", "carol-cli-secret"
		before := f.adminRequests("AlterUserSCRAMCredentials")
		props := writeClientProperties(t, p[1], "SCRAM-SHA-512", "admin", "", "")
		out := mustTool(t, "", kafkabed.MainConfigs, "--bootstrap-server", p[1].Addr, "--command-config", props,
			"--alter", "--add-config", "SCRAM-SHA-512=[iterations=4096,password="+javaPass+"]", "--entity-type", "users", "--entity-name", java)
		t0 := time.Now()
		if !strings.Contains(out, "Completed updating config for user "+java) {
			t.Fatalf("kafka-configs through proxy 1:\n%s", out)
		}
		secrets = append(secrets, secret{java + " password", []byte(javaPass)})
		origin := f.adminOrigin(t, before, "AlterUserSCRAMCredentials")
		f.expectEverywhere(t, fmt.Sprintf("user added with kafka-configs (through proxy %d)", origin), origin,
			scram.Auth{User: java, Pass: javaPass}.AsSha512Mechanism(), t0, true)
	}

	if _, err := adminVia(t, p[2], "alice").ExpireDelegationToken(ctx, tok.HMAC, -time.Millisecond); err != nil {
		t.Fatalf("expire the token through proxy 2: %v", err)
	}
	t0 = time.Now()
	f.expectEverywhere(t, "token expired through proxy 2", 2, tokenMech(tok), t0, false)

	res, err := adminVia(t, p[2], "admin").AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: kadm.ScramSha512}}, nil)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("delete %s through proxy 2: %v", user, err)
	}
	t0 = time.Now()
	f.expectEverywhere(t, "user deleted through proxy 2", 2, userMech, t0, false)
	return secrets
}

// adminRequests counts each proxy's audit lines for admin requests of api.
func (f *stateFleet) adminRequests(api string) []int {
	n := make([]int, len(f.proxies))
	for i, e := range f.proxies {
		n[i] = strings.Count(e.logs.String(), `"api":"`+api+`"`)
	}
	return n
}

// adminOrigin is the one proxy that logged an admin request of api since
// before (adminRequests).
func (f *stateFleet) adminOrigin(t *testing.T, before []int, api string) int {
	t.Helper()
	origin := -1
	for i, n := range f.adminRequests(api) {
		if n > before[i] {
			if origin >= 0 {
				t.Fatalf("%s went to proxies %d and %d", api, origin, i)
			}
			origin = i
		}
	}
	if origin < 0 {
		t.Fatalf("no proxy logged the %s request", api)
	}
	return origin
}

// expectEverywhere checks a change made through proxy origin, answered at
// t0. Origin shows it on the first login. Every other proxy must have
// applied the topic up to where origin's answer left it (its
// scram_proxy_state_offset, polled on /metrics) within propagationBound,
// the figure that fails the test, and then show it to logins (polled with
// saslLogin, up to propagationDeadline; that time, bounded by the end of
// the first good attempt, is logged too). Last, a franz-go client sees it
// through every proxy. wantOK says whether mech's logins must now succeed.
func (f *stateFleet) expectEverywhere(t *testing.T, what string, origin int, mech sasl.Mechanism, t0 time.Time, wantOK bool) {
	t.Helper()
	tlsCfg := f.proxies[origin].clientTLS(t)
	if err := loginMatches(saslLogin(f.proxies[origin].Addr, tlsCfg, mech), wantOK); err != nil {
		t.Errorf("%s: at proxy %d itself, right after the answer: %v", what, origin, err)
	}
	offset := metricValue(f.proxies[origin].metrics(t), stateOffsetMetric)
	applied := make([]time.Duration, len(f.proxies))
	loggedIn := make([]time.Duration, len(f.proxies))
	errs := make([]error, len(f.proxies))
	var wg sync.WaitGroup
	for i, e := range f.proxies {
		if i == origin {
			continue
		}
		wg.Go(func() {
			if applied[i], errs[i] = pollApplied(e, offset, t0, propagationDeadline); errs[i] == nil {
				loggedIn[i], errs[i] = pollLogin(e, tlsCfg, mech, t0, wantOK, propagationDeadline)
			}
		})
	}
	wg.Wait()
	var seen []string
	for i := range f.proxies {
		if i == origin {
			continue
		}
		if errs[i] != nil {
			t.Errorf("%s: proxy %d: %v", what, i, errs[i])
			continue
		}
		seen = append(seen, fmt.Sprintf("proxy %d applied it after %v, logins showed it after %v", i,
			applied[i].Round(time.Millisecond), loggedIn[i].Round(time.Millisecond)))
		if applied[i] > propagationBound {
			t.Errorf("%s: proxy %d applied it after %v, over the %v bound", what, i, applied[i].Round(time.Millisecond), propagationBound)
		}
	}
	if len(seen) > 0 {
		t.Logf("%s (offset %v): %s", what, offset, strings.Join(seen, "; "))
	}
	for i, e := range f.proxies {
		if err := loginMatches(kgoLogin(t, e, mech), wantOK); err != nil {
			t.Errorf("%s: a franz-go client through proxy %d: %v", what, i, err)
		}
	}
}

// stateOffsetMetric is the offset of the last state record a proxy applied.
const stateOffsetMetric = "scram_proxy_state_offset"

// pollApplied scrapes e's /metrics until its stateOffsetMetric reaches
// offset, or until deadline after t0; it returns the time from t0 to the
// end of the first scrape that showed it.
func pollApplied(e *proxyEnv, offset float64, t0 time.Time, deadline time.Duration) (time.Duration, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for time.Since(t0) < deadline {
		resp, err := cl.Get("http://" + e.MetricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := metricValue(string(b), stateOffsetMetric)
			if got >= offset {
				return time.Since(t0), nil
			}
			last = fmt.Sprintf("at offset %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("not at state offset %v within %v: %s", offset, deadline, last)
}

// loginMatches says why a login's outcome err is not the wanted one; a
// refused login must be the authentication failure, not any error.
func loginMatches(err error, wantOK bool) error {
	switch {
	case wantOK && err != nil:
		return fmt.Errorf("login failed: %w", err)
	case !wantOK && err == nil:
		return errors.New("login still succeeds")
	case !wantOK && !errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("login failed with %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	return nil
}

// secret is a value that must never be in the state topic in the clear.
type secret struct {
	what  string
	bytes []byte
}

// forms are the ways a secret could show in a record: raw, base64 (both
// alphabets, padded or not) and hex.
func (s secret) forms() map[string][]byte {
	return map[string][]byte{
		"raw":       s.bytes,
		"base64":    []byte(base64.StdEncoding.EncodeToString(s.bytes)),
		"base64raw": []byte(base64.RawStdEncoding.EncodeToString(s.bytes)),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString(s.bytes)),
		"hex":       []byte(hex.EncodeToString(s.bytes)),
	}
}

// userSecrets are what a SCRAM user added with password and salt would
// leak: the password, the salted password, the stored key and server key.
func userSecrets(t *testing.T, user, password string, salt []byte, iterations int) []secret {
	t.Helper()
	c, err := isasl.DeriveCredential(isasl.ScramSHA512, password, salt, iterations)
	if err != nil {
		t.Fatal(err)
	}
	salted, err := pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	return []secret{
		{user + " password", []byte(password)},
		{user + " salted password", salted},
		{user + " stored key", c.StoredKey},
		{user + " server key", c.ServerKey},
	}
}

// tokenSecrets are what a token would leak: its HMAC (raw and as the
// base64 password clients use) and, per mechanism, the stored and server
// keys of its SCRAM credential, derived from the salt and iterations the
// proxy e announces in its server-first message.
func tokenSecrets(t *testing.T, e *proxyEnv, tok kadm.DelegationToken) []secret {
	t.Helper()
	pass := base64.StdEncoding.EncodeToString(tok.HMAC)
	out := []secret{{"token HMAC", tok.HMAC}, {"token password", []byte(pass)}}
	for _, m := range []isasl.Mechanism{isasl.ScramSHA512, isasl.ScramSHA256} {
		salt, iterations := tokenSalt(t, e, m, tok.TokenID)
		c, err := isasl.DeriveCredential(m, pass, salt, iterations)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, secret{"token " + string(m) + " stored key", c.StoredKey},
			secret{"token " + string(m) + " server key", c.ServerKey})
	}
	return out
}

// tokenSalt reads the salt and iteration count of token id's credential
// for m from the proxy's server-first message (a hand-driven login that
// stops there).
func tokenSalt(t *testing.T, e *proxyEnv, m isasl.Mechanism, id string) ([]byte, int) {
	t.Helper()
	w := dialTLS(t, e)
	defer w.Conn().Close()
	hs := w.RoundTrip(protocoltest.Handshake(1, string(m))).(*kmsg.SASLHandshakeResponse)
	if hs.ErrorCode != 0 {
		t.Fatalf("SaslHandshake %s: %d", m, hs.ErrorCode)
	}
	first := "n,,n=" + id + ",r=fleetnonce" + strconv.Itoa(int(time.Now().UnixNano()%1e6)) + ",tokenauth=true"
	r := w.RoundTrip(protocoltest.Authenticate(1, []byte(first))).(*kmsg.SASLAuthenticateResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("token server-first for %s: %d", m, r.ErrorCode)
	}
	var salt []byte
	iterations := 0
	for _, attr := range strings.Split(string(r.SASLAuthBytes), ",") {
		switch {
		case strings.HasPrefix(attr, "s="):
			salt, _ = base64.StdEncoding.DecodeString(attr[2:])
		case strings.HasPrefix(attr, "i="):
			iterations, _ = strconv.Atoi(attr[2:])
		}
	}
	if len(salt) == 0 || iterations == 0 {
		t.Fatalf("server-first %q lacks a salt or iterations", r.SASLAuthBytes)
	}
	return salt, iterations
}

// checkSealed reads the state topic from the brokers and fails on any
// record whose key or value holds one of secrets in any of its forms. It
// returns the records read.
func (f *stateFleet) checkSealed(t *testing.T, secrets []secret) []*kgo.Record {
	t.Helper()
	recs := f.stateRecords(t)
	if len(recs) == 0 {
		t.Fatalf("state topic %s is empty", f.Topic)
	}
	for _, r := range recs {
		for _, s := range secrets {
			for form, b := range s.forms() {
				if bytes.Contains(r.Key, b) || bytes.Contains(r.Value, b) {
					t.Errorf("record %q at offset %d holds the %s (%s) in the clear", r.Key, r.Offset, s.what, form)
				}
			}
		}
	}
	t.Logf("%d records in %s, none holds any of %d secrets in 5 forms each", len(recs), f.Topic, len(secrets))
	return recs
}

// stateRejectedMetric counts the state records a proxy ignored because
// they did not open (not sealed under a configured key, or not for their key).
const stateRejectedMetric = "scram_proxy_state_records_rejected_total"

// checkInjected produces records into the state topic by hand, straight to
// the brokers: garbage, and a well-formed but unsealed user with a known
// password. Every proxy must count each as ignored, the user must log in
// nowhere, and a user added afterwards must still reach every proxy (the
// bad records do not stop the tail).
func (f *stateFleet) checkInjected(t *testing.T) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	before := make([]float64, len(f.proxies))
	for i, e := range f.proxies {
		before[i] = metricValue(e.metrics(t), stateRejectedMetric)
	}
	mallory, err := isasl.DeriveCredential(isasl.ScramSHA512, "mallory-secret", []byte("mallory-salt"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(map[string]string{string(isasl.ScramSHA512): mallory.StoredForm()})
	junk := make([]byte, 96)
	_, _ = rand.Read(junk)
	injected := []*kgo.Record{
		{Key: []byte("user/mallory"), Value: plain},
		{Key: []byte("user/mallory-junk"), Value: junk},
		{Key: []byte("token/AAAAAAAAAAAAAAAAAAAAAA"), Value: junk[:40]},
		{Key: []byte("not a kind"), Value: []byte("{}")},
	}
	if err := f.directClient(t, kgo.DefaultProduceTopic(f.Topic)).ProduceSync(ctx, injected...).FirstErr(); err != nil {
		t.Fatalf("produce into %s by hand: %v", f.Topic, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, e := range f.proxies {
		var got float64
		for {
			got = metricValue(e.metrics(t), stateRejectedMetric) - before[i]
			if got >= float64(len(injected)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != float64(len(injected)) {
			t.Errorf("proxy %d: %s rose by %v for %d records made by hand", i, stateRejectedMetric, got, len(injected))
		}
	}
	for i, e := range f.proxies {
		if err := loginMatches(kgoLogin(t, e, scram.Auth{User: "mallory", Pass: "mallory-secret"}.AsSha512Mechanism()), false); err != nil {
			t.Errorf("the user produced by hand, at proxy %d: %v", i, err)
		}
	}
	user := fmt.Sprintf("erin-%d", time.Now().UnixNano()%1e6)
	f.addUser(t, 0, user, "erin-secret", nil)
	f.expectEverywhere(t, "user added after the records made by hand", 0,
		scram.Auth{User: user, Pass: "erin-secret"}.AsSha512Mechanism(), time.Now(), true)
}

// addUser adds user with password (SCRAM-SHA-512, 4096 iterations, salt
// when not nil) through proxy i as admin.
func (f *stateFleet) addUser(t *testing.T, i int, user, password string, salt []byte) {
	t.Helper()
	up := kadm.UpsertSCRAM{User: user, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: password}
	if salt != nil {
		salted, err := pbkdf2.Key(sha512.New, password, salt, int(up.Iterations), sha512.Size)
		if err != nil {
			t.Fatal(err)
		}
		up.Password, up.Salt, up.SaltedPassword = "", salt, salted
	}
	res, err := adminVia(t, f.proxies[i], "admin").AlterUserSCRAMs(ctxT(t, 30*time.Second), nil, []kadm.UpsertSCRAM{up})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("add %s through proxy %d: %v", user, i, err)
	}
}

// checkHidden: the state topic is on the brokers, and in no Metadata
// answer of any proxy, listed or asked for by name.
func (f *stateFleet) checkHidden(t *testing.T) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	direct, err := kadm.NewClient(f.directClient(t)).ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !direct.Has(f.Topic) {
		t.Fatalf("state topic %s is not on the brokers: %v", f.Topic, direct.Names())
	}
	for i, e := range f.proxies {
		cl := clientVia(t, e, "admin")
		all, err := kadm.NewClient(cl).ListTopicsWithInternal(ctx)
		if err != nil {
			t.Fatalf("list topics through proxy %d: %v", i, err)
		}
		if all.Has(f.Topic) {
			t.Errorf("proxy %d lists the state topic %s", i, f.Topic)
		}
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(f.Topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("metadata for %s through proxy %d: %v", f.Topic, i, err)
		}
		for _, rt := range resp.Topics {
			if rt.Topic != nil && *rt.Topic == f.Topic && (rt.ErrorCode == 0 || len(rt.Partitions) > 0) {
				t.Errorf("proxy %d answers Metadata for the state topic by name: error %d, %d partitions", i, rt.ErrorCode, len(rt.Partitions))
			}
		}
		if i == 0 {
			t.Logf("Metadata asking for %s by name: %d topics in the answer", f.Topic, len(resp.Topics))
		}
	}
}
