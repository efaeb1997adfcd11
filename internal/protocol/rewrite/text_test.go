package rewrite

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEveryTextResponseIsScrubbed walks every kmsg response type: one that
// carries broker-composed text or client hosts must have its text withheld
// by the registry, and the registry lists no key without such a field.
func TestEveryTextResponseIsScrubbed(t *testing.T) {
	reg := Default()
	found := 0
	for k := int16(0); k < 1000; k++ {
		resp := kmsg.ResponseForKey(k)
		if resp == nil {
			if reg[k].Text {
				t.Errorf("key %d has text handling but kmsg does not know it", k)
			}
			continue
		}
		has := planText(reflect.TypeOf(resp)) != nil
		if has {
			found++
		}
		if has != reg[k].Text {
			t.Errorf("%s (key %d): carries text %v, scrubbed %v", kmsg.NameForKey(k), k, has, reg[k].Text)
		}
	}
	if found < 40 {
		t.Fatalf("reflection found only %d responses with text; the walk is broken", found)
	}
}

func TestNamesUpstream(t *testing.T) {
	hosts := fixed{}.UpstreamHosts()
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"", false},
		{"Topic 'orders' already exists.", false},
		{"The request timed out at 12:30:45.", false},
		{"Replication factor: 3 larger than available brokers: 1.", false},
		{"throttled replicas 0:1,1:2", false},
		{"Principal User:alice is not authorized", false},
		{"Connection to node 1 (kafka-0.internal.example/10.1.2.3:9092) could not be established.", true},
		{"broker KAFKA-0.INTERNAL.EXAMPLE is shutting down", true},
		{"no route to 10.9.9.9", true},
		{"Listener INTERNAL://broker:9093 is not ready", true},
		{"controller at [fd00::5]:9093 did not answer", true},
		{"controller at fd00::5 did not answer", true},
		{"dial tcp other-broker.example:9093: i/o timeout", true},
	} {
		if got := NamesUpstream(tc.text, hosts); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.text, got, tc.want)
		}
	}
}

// describeConfigsFixture is what a Kafka broker answers for its own
// configuration: listeners, addresses, the controllers, listener-scoped
// settings, a plugin's bootstrap servers, and plain settings.
func describeConfigsFixture() *kmsg.DescribeConfigsResponse {
	resp := kmsg.NewPtrDescribeConfigsResponse()
	res := kmsg.NewDescribeConfigsResponseResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	add := func(name, value string, syn ...string) {
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source = name, kmsg.StringPtr(value), kmsg.ConfigSourceStaticBrokerConfig
		for i := 0; i+1 < len(syn); i += 2 {
			s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			s.Name, s.Value = syn[i], kmsg.StringPtr(syn[i+1])
			c.ConfigSynonyms = append(c.ConfigSynonyms, s)
		}
		res.Configs = append(res.Configs, c)
	}
	add("listeners", "INTERNAL://0.0.0.0:9093,CLIENTS://0.0.0.0:9092")
	add("advertised.listeners", "INTERNAL://kafka-0.internal.example:9093,CLIENTS://10.1.2.3:9092",
		"advertised.listeners", "INTERNAL://kafka-0.internal.example:9093,CLIENTS://10.1.2.3:9092")
	add("listener.security.protocol.map", "INTERNAL:SASL_SSL,CLIENTS:SASL_SSL,CONTROLLER:SSL")
	add("inter.broker.listener.name", "INTERNAL")
	// Kafka's default listener names are the protocol names, so the
	// inter-broker protocol is then the inter-broker listener's name.
	add("security.inter.broker.protocol", "SASL_PLAINTEXT", "security.inter.broker.protocol", "SASL_PLAINTEXT")
	add("controller.listener.names", "CONTROLLER")
	add("controller.quorum.voters", "1@ctrl-1.internal.example:9094")
	add("confluent.metrics.reporter.bootstrap.servers", "kafka-0.internal.example:9093")
	add("listener.name.internal.scram-sha-512.sasl.jaas.config", "")
	add("ssl.keystore.location", "/etc/kafka/kafka-0.internal.example.jks",
		"listener.name.internal.ssl.keystore.location", "/etc/kafka/internal.jks",
		"ssl.keystore.location", "/etc/kafka/kafka-0.internal.example.jks")
	add("log.retention.hours", "168")
	add("sasl.enabled.mechanisms", "SCRAM-SHA-512")
	resp.Resources = append(resp.Resources, res)
	return resp
}

// TestDescribeConfigsWithholdsUpstream: no listener, address, controller or
// listener name of the upstream survives DescribeConfigs at any version;
// the rest of the configuration does.
func TestDescribeConfigsWithholdsUpstream(t *testing.T) {
	reg := Default()
	for v := int16(0); v <= kmsg.NewPtrDescribeConfigsResponse().MaxVersion(); v++ {
		resp := describeConfigsFixture()
		resp.SetVersion(v)
		if !reg.NeedsRewrite(32, v) {
			t.Fatalf("v%d: DescribeConfigs is not decoded", v)
		}
		out, changed, err := reg.Response(nil, 32, v, resp.AppendTo(nil), fixed{})
		if err != nil || !changed {
			t.Fatalf("v%d: changed %v, %v", v, changed, err)
		}
		for _, leak := range []string{"kafka-0.internal.example", "10.1.2.3", "ctrl-1", "INTERNAL", "CLIENTS", "CONTROLLER", "SASL_PLAINTEXT", "listener.name.", "://"} {
			if bytes.Contains(out, []byte(leak)) {
				t.Errorf("v%d: %q reaches the client", v, leak)
			}
		}
		got := kmsg.NewPtrDescribeConfigsResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(out); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		byName := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range got.Resources[0].Configs {
			byName[c.Name] = c
		}
		for _, name := range []string{"listeners", "advertised.listeners", "listener.security.protocol.map",
			"inter.broker.listener.name", "security.inter.broker.protocol", "controller.listener.names", "controller.quorum.voters",
			"confluent.metrics.reporter.bootstrap.servers", "ssl.keystore.location"} {
			c, ok := byName[name]
			if !ok || c.Value != nil || !c.IsSensitive {
				t.Errorf("v%d: %s: present %v, value %v, sensitive %v; want withheld like a password", v, name, ok, c.Value, c.IsSensitive)
			}
		}
		if c := byName["log.retention.hours"]; c.Value == nil || *c.Value != "168" || c.IsSensitive {
			t.Errorf("v%d: a plain setting was touched: %+v", v, c)
		}
		if c := byName["sasl.enabled.mechanisms"]; c.Value == nil || *c.Value != "SCRAM-SHA-512" {
			t.Errorf("v%d: sasl.enabled.mechanisms: %+v", v, c)
		}
		if len(byName) != 11 {
			t.Errorf("v%d: %d configs, want 11 (the listener-scoped one dropped)", v, len(byName))
		}
	}
}

// TestTextNamingUpstreamIsWithheld: error messages and status details that
// name the upstream are withheld in any response, others pass; client hosts
// are always withheld.
func TestTextNamingUpstreamIsWithheld(t *testing.T) {
	reg := Default()
	leak := "Failed to forward the request to the controller at ctrl-1.internal.example:9094"

	ct := kmsg.NewPtrCreateTopicsResponse()
	ct.SetVersion(7)
	for i, msg := range []string{leak, "Topic 'x' already exists."} {
		topic := kmsg.NewCreateTopicsResponseTopic()
		topic.Topic, topic.ErrorCode, topic.ErrorMessage = "t"+string(rune('a'+i)), kerr.NotController.Code, kmsg.StringPtr(msg)
		ct.Topics = append(ct.Topics, topic)
	}
	out, changed, err := reg.Response(nil, 19, 7, ct.AppendTo(nil), fixed{})
	if err != nil || !changed || bytes.Contains(out, []byte("ctrl-1")) {
		t.Fatalf("CreateTopics: changed %v, %v, %q", changed, err, out)
	}
	if !bytes.Contains(out, []byte("Topic 'x' already exists.")) {
		t.Fatal("a message that names nothing upstream was withheld")
	}

	dg := kmsg.NewPtrDescribeGroupsResponse()
	dg.SetVersion(5)
	g := kmsg.NewDescribeGroupsResponseGroup()
	g.Group = "g"
	m := kmsg.NewDescribeGroupsResponseGroupMember()
	m.MemberID, m.ClientID, m.ClientHost = "m1", "c1", "/10.1.2.3"
	g.Members = append(g.Members, m)
	dg.Groups = append(dg.Groups, g)
	out, changed, err = reg.Response(nil, 15, 5, dg.AppendTo(nil), fixed{})
	if err != nil || !changed || bytes.Contains(out, []byte("10.1.2.3")) || !bytes.Contains(out, []byte("c1")) {
		t.Fatalf("DescribeGroups client host: changed %v, %v, %q", changed, err, out)
	}

	// A non-nullable message becomes its error code's description.
	sh := kmsg.NewPtrStreamsGroupHeartbeatResponse()
	sh.SetVersion(0)
	sh.ErrorCode = kerr.CoordinatorNotAvailable.Code
	sh.ErrorMessage = kmsg.StringPtr(leak)
	st := kmsg.NewStreamsGroupHeartbeatResponseStatus()
	st.StatusDetail = "waiting for kafka-0.internal.example"
	sh.Status = append(sh.Status, st)
	out, _, err = reg.Response(nil, 88, 0, sh.AppendTo(nil), fixed{})
	if err != nil || bytes.Contains(out, []byte("internal.example")) {
		t.Fatalf("StreamsGroupHeartbeat: %v, %q", err, out)
	}

	// Nothing to withhold: not re-encoded.
	quiet := kmsg.NewPtrCreateTopicsResponse()
	quiet.SetVersion(7)
	if _, changed, _ := reg.Response(nil, 19, 7, quiet.AppendTo(nil), fixed{}); changed {
		t.Fatal("a response with nothing to withhold was re-encoded")
	}
}
