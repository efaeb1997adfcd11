package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/protocol"
	"github.com/scram-proxy/scram-proxy/internal/protocol/protocoltest"
	"github.com/scram-proxy/scram-proxy/internal/sasl"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// upstreamDetail is what a client of the proxy must never see of a real
// Kafka cluster: any node's address on any listener (as a host + INT32
// port endpoint and as "host:port" text), its loopback host (the proxy
// advertises "localhost"), and the listener names.
type upstreamDetail struct {
	patterns []leakPattern
}

type leakPattern struct {
	what string
	b    []byte
}

func kafkaUpstreamDetail(t *testing.T, k *kafkabed.Cluster) *upstreamDetail {
	d := &upstreamDetail{}
	add := func(what string, b []byte) { d.patterns = append(d.patterns, leakPattern{what, b}) }
	for _, n := range k.Nodes {
		for l, addr := range n.Addrs {
			add(fmt.Sprintf("node %d's %s endpoint", n.ID, l), endpointPattern(t, addr))
			_, port, _ := net.SplitHostPort(addr)
			add(fmt.Sprintf("node %d's %s port as text", n.ID, l), []byte(":"+port))
		}
	}
	add("the brokers' host", []byte("127.0.0.1"))
	// PLAINTEXT is also inside SASL_PLAINTEXT. In lower case a listener
	// name shows in listener-scoped configuration names.
	for _, l := range []string{kafkabed.SASLSSL, kafkabed.Plaintext, "CONTROLLER"} {
		add("listener name "+l, []byte(l))
		add("listener-scoped name of "+l, []byte("listener.name."+strings.ToLower(l)))
	}
	return d
}

// check reports every pattern found in b (a response frame or a stream of
// them) as an error naming what.
func (d *upstreamDetail) check(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, p := range d.patterns {
		if i := bytes.Index(b, p.b); i >= 0 {
			lo, hi := max(0, i-40), min(len(b), i+len(p.b)+40)
			t.Errorf("%s carries %s: …%q…", what, p.what, b[lo:hi])
		}
	}
}

// TestRealKafkaNoUpstreamDetail runs, through a port-per-broker proxy in
// front of the three-node real Kafka, every version the proxy advertises of
// every API that names brokers or describes them (Metadata,
// FindCoordinator, DescribeCluster, Produce and Fetch to a partition
// another node leads, DescribeConfigs of brokers, broker loggers and
// topics with synonyms and documentation, DescribeQuorum, DescribeLogDirs,
// DescribeGroups and ConsumerGroupDescribe with a live member, CreateTopics
// errors), plus a franz-go produce and group consume, and fails on any
// upstream address, host or listener name in any response.
func TestRealKafkaNoUpstreamDetail(t *testing.T) {
	k := realKafka(t, 3)
	topic, classic, modern := uniqueTopic(t, "leak"), uniqueTopic(t, "leak-classic"), uniqueTopic(t, "leak-consumer")
	base := portBlock(t, 4)
	e := startProxy(t, envOptions{kafka: k, topics: []string{topic}, partitions: 6,
		config: func(c *config.Config) {
			c.Routing = config.Routing{Mode: "port-per-broker", BrokerPortBase: base, AdvertisedHost: "localhost"}
		}})
	detail := kafkaUpstreamDetail(t, k)

	// A franz-go producer and group consumer, every byte they read checked.
	rec := &recorder{}
	produceConsumeVia(t, e.Addr, e.clientTLS(t), scramAuth("alice"), topic, 30, 6, rec)
	rec.mu.Lock()
	detail.check(t, "a franz-go produce and group consume", rec.read.Bytes())
	rec.mu.Unlock()

	// Live members of a classic and of a KIP-848 group, for the describes.
	for _, g := range [][]kgo.Opt{{kgo.ConsumerGroup(classic)},
		{kgo.ConsumerGroup(modern), kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}} {
		opts := append([]kgo.Opt{kgo.SeedBrokers(e.Addr), kgo.SASL(scramAuth("alice")), kgo.DialTLSConfig(e.clientTLS(t)),
			kgo.ConsumeTopics(topic)}, g...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		}()
		t.Cleanup(func() { cancel(); <-done; cl.Close() })
	}

	// The hand-driven part runs on node 1's proxy port, as admin.
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "leak-test", "1"
	ranges := map[int16][2]int16{}
	dialNode := func(id int32) *protocoltest.Wire {
		w := protocoltest.Dial(t, "localhost:"+strconv.Itoa(base+int(id)), e.clientTLS(t))
		for _, ak := range w.RoundTrip(av).(*kmsg.ApiVersionsResponse).ApiKeys {
			ranges[ak.ApiKey] = [2]int16{ak.MinVersion, ak.MaxVersion}
		}
		if r := w.Login(sasl.ScramSHA512, "admin", testUsers["admin"], 2); r.ErrorCode != 0 {
			t.Fatalf("login: %d", r.ErrorCode)
		}
		return w
	}
	dial := func() *protocoltest.Wire { return dialNode(1) }
	// A Wire's deadline is set once; these connections live longer.
	renew := func(w *protocoltest.Wire) *protocoltest.Wire {
		_ = w.Conn().SetDeadline(time.Now().Add(protocoltest.Deadline))
		return w
	}
	w := dial()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	m := renew(w).RoundTrip(meta).(*kmsg.MetadataResponse)
	if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 6 {
		t.Fatalf("metadata of %s: %+v", topic, m.Topics)
	}
	topicID := m.Topics[0].TopicID
	foreign := int32(-1) // a partition node 1 does not lead
	for _, p := range m.Topics[0].Partitions {
		if p.Leader != 1 {
			foreign = p.Partition
		}
	}
	if foreign < 0 {
		t.Fatal("node 1 leads every partition")
	}

	configs := func(typ kmsg.ConfigResourceType, name string) kmsg.DescribeConfigsRequestResource {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = typ, name
		return r
	}
	build := map[int16]func() kmsg.Request{
		0: func() kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Acks, r.TimeoutMillis = 1, 5000
			tp := kmsg.NewProduceRequestTopic()
			tp.Topic, tp.TopicID = topic, topicID
			part := kmsg.NewProduceRequestTopicPartition()
			part.Partition, part.Records = foreign, keyedRecordBatch([]byte("k"), []byte("x"))
			tp.Partitions = append(tp.Partitions, part)
			r.Topics = append(r.Topics, tp)
			return r
		},
		1: func() kmsg.Request {
			r := kmsg.NewPtrFetchRequest()
			r.MaxWaitMillis, r.MaxBytes = 10, 1<<20
			tp := kmsg.NewFetchRequestTopic()
			tp.Topic, tp.TopicID = topic, topicID
			part := kmsg.NewFetchRequestTopicPartition()
			part.Partition, part.PartitionMaxBytes = foreign, 1<<20
			tp.Partitions = append(tp.Partitions, part)
			r.Topics = append(r.Topics, tp)
			return r
		},
		3: func() kmsg.Request { return kmsg.NewPtrMetadataRequest() },
		10: func() kmsg.Request {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.CoordinatorKey, r.CoordinatorKeys = classic, []string{classic, modern}
			return r
		},
		15: func() kmsg.Request {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.Groups = []string{classic}
			return r
		},
		19: func() kmsg.Request {
			r := kmsg.NewPtrCreateTopicsRequest()
			r.ValidateOnly = true
			for _, spec := range []struct {
				name string
				rf   int16
			}{{topic, 1}, {"leak-rf-5", 5}, {"bad/name", 1}} {
				tp := kmsg.NewCreateTopicsRequestTopic()
				tp.Topic, tp.NumPartitions, tp.ReplicationFactor = spec.name, 1, spec.rf
				r.Topics = append(r.Topics, tp)
			}
			return r
		},
		32: func() kmsg.Request {
			r := kmsg.NewPtrDescribeConfigsRequest()
			for _, n := range k.Nodes {
				id := strconv.Itoa(int(n.ID))
				r.Resources = append(r.Resources, configs(kmsg.ConfigResourceTypeBroker, id),
					configs(kmsg.ConfigResourceTypeBrokerLogger, id))
			}
			r.Resources = append(r.Resources, configs(kmsg.ConfigResourceTypeBroker, ""), configs(kmsg.ConfigResourceTypeTopic, topic))
			r.IncludeSynonyms, r.IncludeDocumentation = true, true
			return r
		},
		35: func() kmsg.Request { return kmsg.NewPtrDescribeLogDirsRequest() },
		55: func() kmsg.Request {
			r := kmsg.NewPtrDescribeQuorumRequest()
			tp := kmsg.NewDescribeQuorumRequestTopic()
			tp.Topic = "__cluster_metadata"
			tp.Partitions = append(tp.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
			r.Topics = append(r.Topics, tp)
			return r
		},
		60: func() kmsg.Request { return kmsg.NewPtrDescribeClusterRequest() },
		69: func() kmsg.Request {
			r := kmsg.NewPtrConsumerGroupDescribeRequest()
			r.Groups = []string{modern}
			return r
		},
	}
	// The group APIs go to the groups' coordinator (both groups' names
	// hash to coordinators found here, once the members have joined).
	time.Sleep(3 * time.Second)
	coordinator := func(group string) int32 {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.SetVersion(3)
		fc.CoordinatorKey = group
		r := renew(w).RoundTrip(fc).(*kmsg.FindCoordinatorResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("FindCoordinator %s: error %d", group, r.ErrorCode)
		}
		return r.NodeID
	}
	groupWire := map[int16]*protocoltest.Wire{15: dialNode(coordinator(classic)), 69: dialNode(coordinator(modern))}
	var keys []int16
	for key := range build {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	checked := 0
	for _, key := range keys {
		rg, ok := ranges[key]
		if !ok {
			t.Errorf("%s not offered", kmsg.NameForKey(key))
			continue
		}
		for v := rg[0]; v <= rg[1]; v++ {
			req := build[key]()
			req.SetVersion(v)
			what := fmt.Sprintf("%s v%d", kmsg.NameForKey(key), v)
			cw := w
			if gw := groupWire[key]; gw != nil {
				cw = gw
			}
			renew(cw)
			corr := cw.Send(req)
			b, err := cw.ReadFrame()
			if err != nil {
				// Kafka 4 advertises Produce v0-v2 yet closes the
				// connection on them: only that same refusal, sent to the
				// broker directly, excuses a closed connection.
				if direct := directAnswer(t, k, req); direct != nil {
					t.Fatalf("%s: %v through the proxy, while the broker answers it directly", what, err)
				}
				t.Logf("%s: the connection closed, as it does at the broker directly", what)
				w = dial()
				continue
			}
			if got := int32(binary.BigEndian.Uint32(b)); got != corr {
				t.Fatalf("%s: correlation id %d, want %d", what, got, corr)
			}
			if key == 32 {
				b = describedConfigs(t, b, v)
			}
			detail.check(t, what, b)
			checked++
		}
	}
	t.Logf("checked %d (api, version) responses from real Kafka %s", checked, kafkabed.Version())

	// The group describes did describe live members, whose client host
	// (the proxy's own upstream-side address) is withheld.
	dg := build[15]().(*kmsg.DescribeGroupsRequest)
	dg.SetVersion(ranges[15][1])
	groups := renew(groupWire[15]).RoundTrip(dg).(*kmsg.DescribeGroupsResponse).Groups
	if len(groups) != 1 || len(groups[0].Members) == 0 {
		t.Fatalf("DescribeGroups found no live member of %s: %+v", classic, groups)
	}
	for _, m := range groups[0].Members {
		if m.ClientHost != "" {
			t.Errorf("member %s: client host %q", m.MemberID, m.ClientHost)
		}
	}
	cd := build[69]().(*kmsg.ConsumerGroupDescribeRequest)
	cd.SetVersion(ranges[69][1])
	cgroups := renew(groupWire[69]).RoundTrip(cd).(*kmsg.ConsumerGroupDescribeResponse).Groups
	if len(cgroups) != 1 || len(cgroups[0].Members) == 0 {
		t.Fatalf("ConsumerGroupDescribe found no live member of %s: %+v", modern, cgroups)
	}
	for _, m := range cgroups[0].Members {
		if m.ClientHost != "" {
			t.Errorf("consumer group member %s: client host %q", m.MemberID, m.ClientHost)
		}
	}
}

// describedConfigs is the text of a DescribeConfigs response frame that a
// broker composes from its own configuration: every resource's error
// message and every configuration's and synonym's name and value. The
// documentation strings are left out: they are Kafka's fixed text, whose
// examples name made-up listeners and addresses.
func describedConfigs(t *testing.T, frame []byte, v int16) []byte {
	t.Helper()
	resp := kmsg.NewPtrDescribeConfigsResponse()
	resp.SetVersion(v)
	hl, err := protocol.ResponseHeaderLen(frame, 32, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.ReadFrom(frame[hl:]); err != nil {
		t.Fatalf("DescribeConfigs v%d: %v", v, err)
	}
	var b bytes.Buffer
	str := func(s *string) {
		if s != nil {
			b.WriteString(*s + "\n")
		}
	}
	for _, r := range resp.Resources {
		str(r.ErrorMessage)
		b.WriteString(r.ResourceName + "\n")
		for _, c := range r.Configs {
			b.WriteString(c.Name + "\n")
			str(c.Value)
			for _, s := range c.ConfigSynonyms {
				b.WriteString(s.Name + "\n")
				str(s.Value)
			}
		}
	}
	return b.Bytes()
}

// directAnswer sends req to node 1's PLAINTEXT listener (no proxy) and
// returns its response frame, or nil when the broker closes the
// connection instead.
func directAnswer(t *testing.T, k *kafkabed.Cluster, req kmsg.Request) []byte {
	t.Helper()
	w := protocoltest.Dial(t, k.Nodes[0].Addr(kafkabed.Plaintext), nil)
	w.Send(req)
	b, err := w.ReadFrame()
	if err != nil {
		return nil
	}
	return b
}
