package test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// throttles counts the throttle intervals the brokers imposed on a client.
type throttles struct{ n atomic.Int64 }

func (h *throttles) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// proxyClient is a franz-go client of user through e, closed when the
// test ends.
func proxyClient(t *testing.T, e *proxyEnv, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := newProxyClient(t, e, user, opts...)
	t.Cleanup(cl.Close)
	return cl
}

// newProxyClient is a franz-go client of user through e; the caller
// closes it.
func newProxyClient(t *testing.T, e *proxyEnv, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	rec := &recorder{}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth(user)),
		kgo.Dialer(rec.dialer(e.clientTLS(t))), kgo.RecordDeliveryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// kafkaACLs creates the ACLs of b on the cluster directly and deletes
// them when the test ends: the cluster is shared.
func kafkaACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	b = b.ResourcePatternType(kadm.ACLPatternLiteral)
	res, err := adm.CreateACLs(ctxT(t, 30*time.Second), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %s %v: %v", r.Principal, r.Operation, r.Err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteACLs(ctx, b); err != nil {
			t.Errorf("delete ACLs: %v", err)
		}
	})
}

// userQuota sets producer_byte_rate for user on the cluster directly and
// removes it when the test ends.
func userQuota(t *testing.T, adm *kadm.Client, user string, rate float64) {
	t.Helper()
	entity := kadm.ClientQuotaEntity{{Type: "user", Name: &user}}
	alter := func(ctx context.Context, remove bool) error {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity,
			Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate, Remove: remove}}}})
		if err == nil {
			for _, r := range res {
				err = errors.Join(err, r.Err)
			}
		}
		return err
	}
	if err := alter(ctxT(t, 30*time.Second), false); err != nil {
		t.Fatalf("set the quota of %s: %v", user, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := alter(ctx, true); err != nil {
			t.Errorf("remove the quota of %s: %v", user, err)
		}
	})
}

// produceOne produces one record to topic and returns the error.
func produceOne(t *testing.T, cl *kgo.Client, topic string, size int) error {
	t.Helper()
	v := make([]byte, size)
	_, _ = rand.Read(v) // incompressible: quotas count the bytes on the wire
	return cl.ProduceSync(ctxT(t, 40*time.Second), &kgo.Record{Topic: topic, Value: v}).FirstErr()
}

// consumeInGroup reads topic in group until it got a record, commits, and
// leaves the group (a member left behind would hold partitions the next
// consumer of the group waits for).
func consumeInGroup(t *testing.T, e *proxyEnv, user, group, topic string) {
	t.Helper()
	cl := newProxyClient(t, e, user, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx := ctxT(t, 60*time.Second)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s consumed nothing from %s in group %s", user, topic, group)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("%s fetch %s/%d: %v", user, tp, p, err) })
		if fs.NumRecords() > 0 {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("%s commit in group %s: %v", user, group, err)
			}
			return
		}
	}
}

// metadataTopics lists the topics a Metadata request for all topics
// returns to user through e.
func metadataTopics(t *testing.T, e *proxyEnv, user string) map[string]bool {
	t.Helper()
	md, err := kadm.NewClient(proxyClient(t, e, user)).Metadata(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatalf("metadata as %s: %v", user, err)
	}
	out := map[string]bool{}
	for _, td := range md.Topics {
		out[td.Topic] = true
	}
	return out
}

// describeACLsAs asks for every ACL through e as user.
func describeACLsAs(t *testing.T, e *proxyEnv, user string) error {
	t.Helper()
	res, err := kadm.NewClient(proxyClient(t, e, user)).DescribeACLs(ctxT(t, 30*time.Second),
		kadm.NewACLs().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny).Allow().Deny().AllowHosts().DenyHosts())
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

var tokenCreatedLine = regexp.MustCompile(`"msg":"upstream token created"[^\n]*"principal":"(User:[^"]+)","token_id":"([^"]+)","expiry"`)

// mintedTokens counts the audit lines of tokens minted per principal.
func mintedTokens(logs string) map[string]int {
	out := map[string]int{}
	for _, m := range tokenCreatedLine.FindAllStringSubmatch(logs, -1) {
		out[m[1]]++
	}
	return out
}

// TestClientPrincipalMode: with upstream.principal_mode client, each client
// acts at a real Kafka (StandardAuthorizer) as its own principal through a
// broker delegation token the proxy's identity (a super user) created for
// it: the broker's ACLs and quotas apply per client, the broker's
// authorization errors reach the client, tokens are minted once per
// principal, audited without their HMAC, and re-created after a restart.
// In proxy mode the same client acts as the proxy.
func TestClientPrincipalMode(t *testing.T) {
	k := realKafka(t, 1)
	adm := kafkaAdmin(t, k)
	ta, tb := uniqueTopic(t, "pm-a"), uniqueTopic(t, "pm-b")
	group := "pm-g-" + ta
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics(ta).Operations(kadm.OpWrite, kadm.OpRead).AllowHosts("*"))
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups(group).Operations(kadm.OpRead).AllowHosts("*"))
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:bob").Topics(tb).Operations(kadm.OpWrite, kadm.OpRead).AllowHosts("*"))
	client := startProxy(t, envOptions{kafka: k, topics: []string{ta, tb},
		config: func(c *config.Config) { c.Upstream.PrincipalMode = "client" }})

	// ACLs: alice writes and reads a in her group; b is bob's.
	alice := proxyClient(t, client, "alice")
	if err := produceOne(t, alice, ta, 100); err != nil {
		t.Fatalf("alice producing to %s (her topic) in client mode: %v", ta, err)
	}
	consumeInGroup(t, client, "alice", group, ta)
	if err := produceOne(t, alice, tb, 100); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice producing to %s (bob's topic) in client mode: %v, want TOPIC_AUTHORIZATION_FAILED", tb, err)
	}
	if topics := metadataTopics(t, client, "alice"); !topics[ta] || topics[tb] {
		t.Fatalf("metadata for alice lists %s: %v, %s: %v; want only her own", ta, topics[ta], tb, topics[tb])
	}
	if err := produceOne(t, proxyClient(t, client, "bob"), tb, 100); err != nil {
		t.Fatalf("bob producing to %s (his topic) in client mode: %v", tb, err)
	}

	// Quotas follow the principal: alice is throttled, bob is not.
	userQuota(t, adm, "alice", 2048)
	var ah, bh throttles
	aliceQ, bobQ := proxyClient(t, client, "alice", kgo.WithHooks(&ah)), proxyClient(t, client, "bob", kgo.WithHooks(&bh))
	for i := 0; ah.n.Load() == 0; i++ {
		if i == 20 {
			t.Fatalf("alice was never throttled after 20 produce requests of 16 KiB under a 2 KiB/s quota")
		}
		if err := produceOne(t, aliceQ, ta, 16<<10); err != nil {
			t.Fatalf("alice under quota: %v", err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := produceOne(t, bobQ, tb, 16<<10); err != nil {
			t.Fatalf("bob: %v", err)
		}
	}
	if n := bh.n.Load(); n != 0 {
		t.Fatalf("bob was throttled %d times by alice's quota", n)
	}
	t.Logf("throttled responses: alice %d, bob %d", ah.n.Load(), bh.n.Load())

	// One token per principal, even for concurrent first logins.
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := proxyClient(t, client, "admin").Ping(ctxT(t, 30*time.Second)); err != nil {
				t.Errorf("admin ping: %v", err)
			}
		}()
	}
	wg.Wait()
	minted := mintedTokens(client.logs.String())
	if minted["User:alice"] != 1 || minted["User:bob"] != 1 || minted["User:admin"] != 1 {
		t.Fatalf("tokens minted per principal %v, want one each for alice, bob and admin", minted)
	}
	_, metrics := scrape(t, client.MetricsAddr, "/metrics")
	for _, want := range []string{"scram_proxy_upstream_tokens_held 3", `scram_proxy_upstream_tokens_total{event="created"} 3`} {
		if !containsLine(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(metrics, "upstream_tokens"))
		}
	}

	// The brokers hold the tokens, owned by the principals; their HMACs
	// never reach the logs.
	// (Token APIs need a SASL login: the proxy's super user, directly.)
	super, err := kgo.NewClient(kgo.SeedBrokers(k.Bootstrap(kafkabed.SASLPlaintext)...),
		kgo.SASL(scram.Auth{User: kafkaProxyUser, Pass: kafkaProxyPassword}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	tokens, err := kadm.NewClient(super).DescribeDelegationTokens(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	for _, tok := range tokens {
		if tok.TokenRequesterPrincipal.Name == kafkaProxyUser {
			owners[tok.Owner.Type+":"+tok.Owner.Name] = true
		}
		for _, enc := range []string{base64.StdEncoding.EncodeToString(tok.HMAC), hex.EncodeToString(tok.HMAC)} {
			if strings.Contains(client.logs.String(), enc) {
				t.Fatalf("the HMAC of token %s is in the proxy's logs", tok.TokenID)
			}
		}
	}
	if !owners["User:alice"] || !owners["User:bob"] {
		t.Fatalf("tokens the proxy requested are owned by %v, want alice and bob among them", owners)
	}

	// The ACL APIs are the broker's: a non-super user is refused as the
	// broker refuses it (the test bed allows everyone where no ACL is, so
	// alice is denied describing the cluster first).
	kafkaACLs(t, adm, kadm.NewACLs().Deny("User:alice").Clusters().Operations(kadm.OpDescribe).DenyHosts("*"))
	if err := describeACLsAs(t, client, "alice"); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("DescribeAcls as alice in client mode: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	out, err := kafkaTool(t, "", kafkabed.MainAcls, "--bootstrap-server", client.Addr,
		"--command-config", writeClientProperties(t, client, "SCRAM-SHA-512", "alice", "", ""), "--list")
	if err == nil || !strings.Contains(out, "ClusterAuthorizationException") {
		t.Fatalf("kafka-acls --list as alice in client mode: err %v, want the broker's ClusterAuthorizationException:\n%s", err, tail(out, 20))
	}

	// In proxy mode alice acts as the proxy (a super user): bob's topic and
	// the ACL list are hers.
	shared := startProxy(t, envOptions{kafka: k})
	if err := produceOne(t, proxyClient(t, shared, "alice"), tb, 100); err != nil {
		t.Fatalf("alice producing to %s in proxy mode: %v", tb, err)
	}
	if err := describeACLsAs(t, shared, "alice"); err != nil {
		t.Fatalf("DescribeAcls as alice in proxy mode: %v", err)
	}
	if n := len(mintedTokens(shared.logs.String())); n != 0 {
		t.Fatalf("proxy mode minted tokens for %d principals", n)
	}

	// A restart loses nothing: the tokens are re-created on demand.
	client.restart(t)
	if err := produceOne(t, proxyClient(t, client, "alice"), ta, 100); err != nil {
		t.Fatalf("alice producing after a restart: %v", err)
	}
	consumeInGroup(t, client, "alice", group, ta)
	if n := mintedTokens(client.logs.String())["User:alice"]; n != 2 {
		t.Fatalf("alice's tokens minted across a restart: %d, want 2", n)
	}
}

// TestClientPrincipalModeRefusal: a proxy identity the brokers do not let
// create tokens for others is named at start with what it lacks, and a
// client the brokers refuse a token for cannot log in: the login fails with
// the broker's error, never falling back to the proxy's identity.
func TestClientPrincipalModeRefusal(t *testing.T) {
	k := realKafka(t, 1)
	direct, err := kgo.NewClient(kgo.SeedBrokers(k.Bootstrap(kafkabed.Plaintext)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	// bob may not create tokens for any user (an explicit deny: the test
	// bed allows everyone where no ACL is).
	denyTokens := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeUser, "*", kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host = "User:bob", "*"
	c.Operation, c.PermissionType = kmsg.ACLOperationCreateTokens, kmsg.ACLPermissionTypeDeny
	denyTokens.Creations = []kmsg.CreateACLsRequestCreation{c}
	resp, err := denyTokens.RequestWith(ctxT(t, 30*time.Second), direct)
	if err != nil || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("create the deny ACL: %v %+v", err, resp)
	}
	t.Cleanup(func() {
		del := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeUser, kmsg.StringPtr("*"), kmsg.ACLResourcePatternTypeLiteral
		f.Principal, f.Host = kmsg.StringPtr("User:bob"), kmsg.StringPtr("*")
		f.Operation, f.PermissionType = kmsg.ACLOperationCreateTokens, kmsg.ACLPermissionTypeDeny
		del.Filters = []kmsg.DeleteACLsRequestFilter{f}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := del.RequestWith(ctx, direct); err != nil {
			t.Errorf("delete the deny ACL: %v", err)
		}
	})
	e := startProxy(t, envOptions{kafka: k, config: func(c *config.Config) {
		c.Upstream.PrincipalMode = "client"
		c.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: "bob", Password: testUsers["bob"]}
	}})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(e.logs.String(), "may not create delegation tokens for other users") {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up error about the missing CreateTokens right:\n%s", tail(e.logs.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if line := grepLines(e.logs.String(), "may not create delegation tokens"); !strings.Contains(line, "--operation CreateTokens") || !strings.Contains(line, "User:bob") {
		t.Fatalf("the start-up error does not say what is missing: %s", line)
	}
	err = proxyClient(t, e, "alice", kgo.RequestRetries(0)).Ping(ctxT(t, 30*time.Second))
	if err == nil || !strings.Contains(err.Error(), "DELEGATION_TOKEN_AUTHORIZATION_FAILED") {
		t.Fatalf("alice's login through a proxy the brokers refuse her token: %v, want the broker's DELEGATION_TOKEN_AUTHORIZATION_FAILED", err)
	}
	if !strings.Contains(e.logs.String(), `"msg":"authentication refused"`) {
		t.Fatalf("no log of the refused login:\n%s", tail(e.logs.String(), 20))
	}
	_, metrics := scrape(t, e.MetricsAddr, "/metrics")
	if !strings.Contains(metrics, `scram_proxy_upstream_tokens_total{event="failed"}`) {
		t.Errorf("metrics lack failed tokens:\n%s", grepLines(metrics, "upstream_tokens"))
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestClientPrincipalModeProxyTokenLogin: a client that logged in with one
// of the proxy's own delegation tokens acts at the brokers as the token's
// owner, through the owner's broker token.
func TestClientPrincipalModeProxyTokenLogin(t *testing.T) {
	k := realKafka(t, 1)
	adm := kafkaAdmin(t, k)
	ta, tb := uniqueTopic(t, "pmt-a"), uniqueTopic(t, "pmt-b")
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics(ta).Operations(kadm.OpWrite, kadm.OpRead).AllowHosts("*"))
	kafkaACLs(t, adm, kadm.NewACLs().Allow("User:bob").Topics(tb).Operations(kadm.OpWrite, kadm.OpRead).AllowHosts("*"))
	tokens := withTokens(t)
	e := startProxy(t, envOptions{kafka: k, topics: []string{ta, tb}, config: func(c *config.Config) {
		tokens(c)
		c.Upstream.PrincipalMode = "client"
	}})
	tok, err := adminFor(t, e, scramAuth("alice")).CreateDelegationToken(ctxT(t, 30*time.Second), kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("alice creates a proxy token: %v", err)
	}
	rec := &recorder{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr), kgo.SASL(tokenMech(tok)), kgo.Dialer(rec.dialer(e.clientTLS(t))),
		kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := produceOne(t, cl, ta, 100); err != nil {
		t.Fatalf("alice's token login producing to %s (her topic): %v", ta, err)
	}
	if err := produceOne(t, cl, tb, 100); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice's token login producing to %s (bob's topic): %v, want TOPIC_AUTHORIZATION_FAILED", tb, err)
	}
	if !strings.Contains(e.logs.String(), `"token_auth":true`) {
		t.Fatal("no token login in the proxy's logs")
	}
	if n := mintedTokens(e.logs.String())["User:alice"]; n != 1 {
		t.Fatalf("broker tokens minted for alice: %d, want 1 (her password and token logins share it)", n)
	}
}
