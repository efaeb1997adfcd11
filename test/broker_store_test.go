package test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// tokenBound is the documented bound within which a token created,
// renewed or expired through one proxy takes effect at every proxy with
// delegation_tokens.store broker.
const tokenBound = time.Second

// brokerStoreSidecars starts one proxy per node of k (sidecar routing: proxy
// i forwards to node i and advertises every node as its proxy), each with
// delegation_tokens.store broker, upstream.principal_mode client and the
// brokers' token key. The failed-login throttle is off, so that the tests'
// repeated login attempts are not spaced out.
func brokerStoreSidecars(t *testing.T, k *kafkabed.Cluster, topics []string) []*proxyEnv {
	t.Helper()
	ports := make([]int, len(k.Nodes))
	brokers := map[string]string{}
	for i, n := range k.Nodes {
		ports[i] = freePort(t)
		brokers[strconv.Itoa(int(n.ID))] = "localhost:" + strconv.Itoa(ports[i])
	}
	var out []*proxyEnv
	for i, n := range k.Nodes {
		o := envOptions{kafka: k, port: ports[i], config: func(c *config.Config) {
			c.Upstream.BootstrapServers = []string{n.Addr(kafkabed.SASLPlaintext)}
			c.Upstream.PrincipalMode = "client"
			c.Routing = config.Routing{Mode: "sidecar", Brokers: brokers}
			c.Tokens.Store = "broker"
			c.Tokens.SecretKey = k.TokenSecretKey
			c.SASL.MaxFailedAuthDelay = 0
		}}
		if i == 0 {
			o.topics = topics
		} else {
			o.tlsFrom = out[0]
		}
		out = append(out, startProxy(t, o))
	}
	return out
}

// seedClient is a franz-go client of e whose requests go to e itself (its
// seed broker), not to whichever proxy metadata names.
func seedClient(t *testing.T, e *proxyEnv, mech sasl.Mechanism) (*kgo.Client, *kgo.Broker) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.DialTLSConfig(e.clientTLS(t)), kgo.RequestRetries(0), kgo.SASL(mech))
	if err != nil {
		t.Fatal(err)
	}
	return cl, cl.SeedBrokers()[0]
}

// tokenLogin logs in at e with the token (a new connection: ApiVersions,
// the SASL exchange, then an ApiVersions request the proxy answers itself)
// and returns the login's error.
func tokenLogin(t *testing.T, e *proxyEnv, id, hmac string) error {
	cl, b := seedClient(t, e, scram.Auth{User: id, Pass: hmac, IsToken: true}.AsSha512Mechanism())
	defer cl.Close()
	_, err := b.Request(ctxT(t, 10*time.Second), kmsg.NewPtrApiVersionsRequest())
	return err
}

// firstLoginAfter tries token logins at e one after another from start on
// until one succeeds, and returns when (after start) that attempt began;
// it gives up after 10 s.
func firstLoginAfter(t *testing.T, e *proxyEnv, id, hmac string, start time.Time) (time.Duration, error) {
	var last error
	for time.Since(start) < 10*time.Second {
		began := time.Since(start)
		if last = tokenLogin(t, e, id, hmac); last == nil {
			return began, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("no login within 10 s; last: %v", last)
}

// TestBrokerTokenStore is issue 17's acceptance item 3: three sidecar
// proxies in front of a three-node Kafka with delegation_tokens.store
// broker. A token created with kafka-delegation-tokens through one proxy
// logs in through the other two within a second; the Java client logs in
// with it and acts at the brokers as its owner (alice's ACLs, not the
// proxy's super user rights); a renewal through proxy 1 is seen by all
// three within a second; Kafka's rules hold for the callers; and expiring it
// through proxy 2 refuses new logins at all three within a second. The proxy's own principal never reaches a client, and the HMAC
// never a log.
//
// The timing rule: the proxies use the brokers' description of a token for
// at most 500 ms, so a login that begins a second after a change sees it.
// A login that began earlier may finish later on a loaded machine.
func TestBrokerTokenStore(t *testing.T) {
	k := realKafka(t, 3)
	adm := kafkaAdmin(t, k)
	ta, tb := uniqueTopic(t, "bs-a"), uniqueTopic(t, "bs-b")
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics(ta).Operations(kadm.OpWrite, kadm.OpRead).AllowHosts("*"))
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("group-"+ta).Operations(kadm.OpRead).AllowHosts("*"))
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:bob").Topics(tb).Operations(kadm.OpWrite, kadm.OpRead).AllowHosts("*"))
	p := brokerStoreSidecars(t, k, []string{ta, tb})

	// Created with the real CLI bootstrapping from proxy 0, as alice. The
	// admin client sends the request to a node of its choice, so the
	// proxy that created it is read from the audit line.
	aliceProps := writeClientProperties(t, p[0], "SCRAM-SHA-512", "alice", "", "")
	id, hmac := createTokenCLI(t, p[0], aliceProps)
	created := time.Now()
	creator := -1
	for i, e := range p {
		if strings.Contains(e.logs.String(), `"msg":"broker token created","audit":true,"principal":"User:alice","owner":"User:alice","token_id":"`+id+`"`) {
			creator = i
		}
	}
	if creator < 0 {
		t.Fatalf("no proxy logged the creation of %s", id)
	}
	t.Logf("kafka-delegation-tokens --create (bootstrap proxy 0) was performed by proxy %d", creator)
	var wg sync.WaitGroup
	for i, e := range p {
		if i == creator {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := firstLoginAfter(t, e, id, hmac, created)
			if err != nil || d > tokenBound {
				t.Errorf("token created through proxy %d: the first login through proxy %d that succeeded began %v after the CLI returned (%v), want within %v",
					creator, i, d, err, tokenBound)
				return
			}
			t.Logf("token created through proxy %d logs in through proxy %d: the first successful login began %v after the CLI returned",
				creator, i, d.Round(time.Millisecond))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Described through proxy 1 as Kafka describes it to alice: hers,
	// requested by her, with no trace of the proxy's identity.
	out := mustTool(t, "", kafkabed.MainDelegationTokens, "--bootstrap-server", p[1].Addr,
		"--command-config", writeClientProperties(t, p[1], "SCRAM-SHA-512", "alice", "", ""),
		"--describe", "--owner-principal", "User:alice")
	row := grepLines(out, id)
	if row == "" || strings.Count(row, "User:alice") != 2 || strings.Contains(out, "User:"+kafkaProxyUser) {
		t.Fatalf("describe through proxy 1 as alice: want the token owned and requested by User:alice, no User:%s:\n%s", kafkaProxyUser, out)
	}

	// The Java client logs in with the token through proxy 2 and produces
	// and consumes alice's topic in her group.
	d := javaDriver(t)
	d.env = func(t *testing.T, e *proxyEnv, mech, user string) []string {
		return []string{"KAFKA_CLIENT_PROPERTIES=" + writeClientProperties(t, e, mech, user, id, hmac)}
	}
	d.wantLog = `"token_auth":true`
	runDriver(t, p[2], d, "SCRAM-SHA-512", "alice", ta, 10)

	// At the brokers the token's connections are alice, not the proxy (a
	// super user): bob's topic is refused, hers is not.
	tokCl, err := kgo.NewClient(kgo.SeedBrokers(p[1].Addr), kgo.DialTLSConfig(p[1].clientTLS(t)),
		kgo.SASL(scram.Auth{User: id, Pass: hmac, IsToken: true}.AsSha512Mechanism()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer tokCl.Close()
	if err := produceOne(t, tokCl, tb, 100); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice's token producing to bob's %s: %v, want the broker's TOPIC_AUTHORIZATION_FAILED", tb, err)
	}
	if err := produceOne(t, tokCl, ta, 100); err != nil {
		t.Fatalf("alice's token producing to her %s: %v", ta, err)
	}

	// Renewed through proxy 1 for one hour, shorter than the 24 h it was
	// created with: a second later every proxy describes the new expiry,
	// though each had just described the old one.
	describedExpiry := func(i int) time.Time {
		cl, b := seedClient(t, p[i], scramAuth("alice"))
		defer cl.Close()
		resp, err := b.Request(ctxT(t, 30*time.Second), kmsg.NewPtrDescribeDelegationTokenRequest())
		if err != nil {
			t.Fatalf("describe through proxy %d: %v", i, err)
		}
		for _, td := range resp.(*kmsg.DescribeDelegationTokenResponse).TokenDetails {
			if td.TokenID == id {
				return time.UnixMilli(td.ExpiryTimestamp)
			}
		}
		t.Fatalf("describe through proxy %d lacks %s", i, id)
		return time.Time{}
	}
	for i := range p {
		if exp := describedExpiry(i); exp.Before(time.Now().Add(23 * time.Hour)) {
			t.Fatalf("before the renewal proxy %d describes expiry %v, want a day ahead", i, exp)
		}
	}
	mac, err := base64.StdEncoding.DecodeString(hmac)
	if err != nil {
		t.Fatal(err)
	}
	aliceCl1, alice1 := seedClient(t, p[1], scramAuth("alice"))
	defer aliceCl1.Close()
	ren := kmsg.NewPtrRenewDelegationTokenRequest()
	ren.HMAC, ren.RenewTimeMillis = mac, time.Hour.Milliseconds()
	if resp, err := alice1.Request(ctxT(t, 30*time.Second), ren); err != nil || resp.(*kmsg.RenewDelegationTokenResponse).ErrorCode != 0 {
		t.Fatalf("alice renewing her token through proxy 1: %v %+v", err, resp)
	}
	renewed := time.Now()
	time.Sleep(time.Until(renewed.Add(tokenBound)))
	for i := range p {
		if exp := describedExpiry(i); exp.After(renewed.Add(time.Hour + time.Minute)) {
			t.Fatalf("%v after the renewal, proxy %d describes the token's expiry as %v, want about an hour after %v",
				tokenBound, i, exp, renewed)
		}
	}

	// Kafka's rules for the callers: a token connection may not manage
	// tokens; bob may neither see nor expire alice's token.
	if _, err := kadm.NewClient(tokCl).DescribeDelegationTokens(ctxT(t, 30*time.Second)); !errors.Is(err, kerr.DelegationTokenRequestNotAllowed) {
		t.Fatalf("describe on a token connection: %v, want DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", err)
	}
	bob := adminFor(t, p[2], scramAuth("bob"))
	if _, err := bob.ExpireDelegationToken(ctxT(t, 30*time.Second), mac, -time.Millisecond); !errors.Is(err, kerr.DelegationTokenOwnerMismatch) {
		t.Fatalf("bob expiring alice's token: %v, want DELEGATION_TOKEN_OWNER_MISMATCH", err)
	}
	toks, err := bob.DescribeDelegationTokens(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatalf("bob describing every token: %v", err)
	}
	for _, tok := range toks {
		if tok.TokenID == id || tok.Owner.Name != "bob" {
			t.Fatalf("bob describing every token sees %s owned by %s", tok.TokenID, tok.Owner.Name)
		}
	}

	// Expired through proxy 2 (at once: a negative period): a login begun
	// a second later is refused at every proxy.
	aliceCl, alice2 := seedClient(t, p[2], scramAuth("alice"))
	defer aliceCl.Close()
	exp := kmsg.NewPtrExpireDelegationTokenRequest()
	exp.HMAC, exp.ExpiryPeriodMillis = mac, -1
	resp, err := alice2.Request(ctxT(t, 30*time.Second), exp)
	if err != nil || resp.(*kmsg.ExpireDelegationTokenResponse).ErrorCode != 0 {
		t.Fatalf("alice expiring her token through proxy 2: %v %+v", err, resp)
	}
	expired := time.Now()
	time.Sleep(time.Until(expired.Add(tokenBound)))
	for i, e := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tokenLogin(t, e, id, hmac); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("a login begun %v after the token was expired through proxy 2: proxy %d answered %v, want SASL_AUTHENTICATION_FAILED",
					tokenBound, i, err)
			}
		}()
	}
	wg.Wait()

	// Audit without secrets; every proxy counted its descriptions.
	for i, e := range p {
		for _, enc := range []string{hmac, hex.EncodeToString(mac)} {
			if strings.Contains(e.logs.String(), enc) {
				t.Errorf("the token's HMAC is in proxy %d's logs", i)
			}
		}
		_, metrics := scrape(t, e.MetricsAddr, "/metrics")
		if n := metricValue(metrics, "scram_proxy_broker_token_describes_total", `outcome="ok"`); n < 1 {
			t.Errorf("proxy %d counted %v successful descriptions of the brokers' tokens:\n%s", i, n, grepLines(metrics, "broker_token"))
		}
	}
}
