package test

import (
	"bytes"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// TestNoUpstreamDetailInConfigsOrMessages: the upstream describes its own
// configuration the way a Kafka broker does (listeners, advertised
// listeners, the listener map, the controllers, listener-scoped settings)
// and answers a CreateTopics with an error message naming its controller's
// address. Through the proxy neither reaches the client, while the rest of
// the answer does.
func TestNoUpstreamDetailInConfigsOrMessages(t *testing.T) {
	e := startProxy(t, envOptions{topics: []string{"known"}})
	upHost, upPort, _ := net.SplitHostPort(e.Upstream)
	listeners := "INTERNAL://" + e.Upstream + ",CONTROLLER://" + upHost + ":19093"

	e.Cluster.ControlKey(int16(kmsg.DescribeConfigs), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster.KeepControl()
		req := kreq.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
		for _, kv := range [][2]string{
			{"listeners", listeners},
			{"advertised.listeners", listeners},
			{"listener.security.protocol.map", "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"},
			{"inter.broker.listener.name", "INTERNAL"},
			{"controller.listener.names", "CONTROLLER"},
			{"controller.quorum.bootstrap.servers", upHost + ":19093"},
			{"listener.name.internal.ssl.client.auth", "required"},
			{"log.retention.hours", "168"},
		} {
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value = kv[0], kmsg.StringPtr(kv[1])
			res.Configs = append(res.Configs, c)
		}
		resp.Resources = append(resp.Resources, res)
		return resp, nil, true
	})
	e.Cluster.ControlKey(int16(kmsg.CreateTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.CreateTopicsRequest)
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic, st.ErrorCode = rt.Topic, kerr.NotController.Code
			st.ErrorMessage = kmsg.StringPtr("request could not be forwarded to the controller at " + upHost + ":19093")
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	w := dialTLS(t, e)
	if r := w.Login(sasl.ScramSHA512, "alice", testUsers["alice"], 1); r.ErrorCode != 0 {
		t.Fatalf("login: %d", r.ErrorCode)
	}
	leaks := [][]byte{[]byte(e.Upstream), []byte(upHost), []byte(":" + upPort), []byte("INTERNAL"), []byte("CONTROLLER"), []byte("listener.name.")}

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.SetVersion(4)
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	dc.Resources = append(dc.Resources, rr)
	w.Send(dc)
	frame, err := w.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		if bytes.Contains(frame, l) {
			t.Errorf("DescribeConfigs carries %q to the client", l)
		}
	}
	if !bytes.Contains(frame, []byte("log.retention.hours")) || !bytes.Contains(frame, []byte("168")) {
		t.Errorf("DescribeConfigs lost a plain setting: %q", frame)
	}

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(5)
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "new-topic", 1, 1
	ct.Topics = append(ct.Topics, topic)
	resp := w.RoundTrip(ct).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.NotController.Code {
		t.Fatalf("CreateTopics: %+v", resp.Topics)
	}
	if m := resp.Topics[0].ErrorMessage; m != nil {
		t.Errorf("the upstream's error message naming its controller reached the client: %q", *m)
	}
}
