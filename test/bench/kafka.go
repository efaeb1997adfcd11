package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scram-proxy/scram-proxy/internal/config"
	"github.com/scram-proxy/scram-proxy/internal/tlsutil"
	"github.com/scram-proxy/scram-proxy/test/kafkabed"
)

// The proxy's own identity at the real broker.
const kafkaProxyUser, kafkaProxyPass = "proxy", "proxy-secret"

// benchKafka measures real Apache Kafka (the test bed: one KRaft node)
// with clients going direct to its SASL_SSL listener (TLS + SCRAM-SHA-512)
// against the same broker through the proxy (TLS + SCRAM-SHA-512 at the
// proxy, SASL_PLAINTEXT upstream as the proxy's own user), interleaved in
// rounds like the kfake phases: 1000 B produce with acks=all to a
// one-partition topic, then consume of what was produced. It returns the
// table rows (no relay column), CPU rows, a line saying what was run, and
// (phase kafka-principal) the section comparing principal_mode client
// with proxy mode (benchPrincipalModes).
// An error means the test bed could not start (no Java or Maven).
func benchKafka(dir, certFile, keyFile string, proxyTLS *tls.Config) (rows, busy []row, desc, principalSection string, err error) {
	fmt.Fprintln(os.Stderr, "bench: starting the real Kafka test bed")
	c, err := kafkabed.Start(context.Background(), kafkabed.Config{
		Users: map[string]string{user: pass, kafkaProxyUser: kafkaProxyPass},
		// The bench user is an ordinary user (the test bed allows everyone
		// where no ACL names a resource): the broker's authorizer evaluates
		// its requests when it goes direct or through a proxy in
		// principal_mode client, as it would for a real client.
		SuperUsers: []string{kafkaProxyUser},
		Heap:       "1g",
		Properties: map[string]string{"log.retention.bytes": "2147483648", "log.segment.bytes": "268435456"},
		Log:        os.Stderr,
	})
	if err != nil {
		return nil, nil, "", "", err
	}
	defer c.Stop()
	if err := createBenchTopic(c); err != nil {
		return nil, nil, "", "", err
	}
	kafkaTLS, err := tlsutil.ClientConfig(c.CAPEM, "localhost")
	if err != nil {
		return nil, nil, "", "", err
	}
	addr, _, pid, stop, err := startProxy(filepath.Join(dir, "proxy"), certFile, keyFile, c.Bootstrap(kafkabed.SASLPlaintext)[0],
		func(cfg *config.Config) {
			cfg.Upstream.SASL = config.UpstreamSASL{Mechanism: "SCRAM-SHA-512", Username: kafkaProxyUser, Password: kafkaProxyPass}
		})
	if err != nil {
		return nil, nil, "", "", err
	}
	defer stop()
	d := target{name: "kafka direct", addr: c.Bootstrap(kafkabed.SASLSSL)[0], tls: kafkaTLS}
	p := target{name: "kafka proxy", addr: addr, tls: proxyTLS, pid: pid}

	add := func(metric, unit string, dv, pv float64) {
		rows = append(rows, row{"real Kafka: " + metric + " (" + unit + ")", dv, 0, pv, true})
	}
	var produced float64 // bytes now in the topic
	if want("kafka-produce") {
		var dr, pr throughput
		for i := 0; i < *rounds; i++ {
			for _, x := range []struct {
				t  target
				to *throughput
			}{{d, &dr}, {p, &pr}} {
				s := produce(x.t, 1000)
				produced += s.records * s.secs * 1000
				x.to.add(s)
			}
		}
		dm, pm := dr.median(), pr.median()
		add("produce 1000 B records, acks=all", "MiB/s", dm.mib, pm.mib)
		add("produce 1000 B records, acks=all", "records/s", dm.records, pm.records)
		busy = append(busy, row{"real Kafka produce (broker JVM not counted)", dm.busy.total(), 0, pm.busy.total(), true})
	}
	if want("kafka-consume") {
		if produced == 0 {
			s := produce(d, 1000)
			produced = s.records * s.secs * 1000
		}
		// Every round reads the same first bytes of the log, from offset 0.
		limit := min(produced, 512<<20)
		var dr, pr throughput
		for i := 0; i < *rounds; i++ {
			dr.add(consumeBytes(d, int64(limit)))
			pr.add(consumeBytes(p, int64(limit)))
		}
		dm, pm := dr.median(), pr.median()
		add(fmt.Sprintf("consume the first %.0f MiB from offset 0", limit/(1<<20)), "MiB/s", dm.mib, pm.mib)
		busy = append(busy, row{"real Kafka consume (broker JVM not counted)", dm.busy.total(), 0, pm.busy.total(), true})
	}
	if want("kafka-principal") {
		pm, err := benchPrincipalModes(c, dir, certFile, keyFile, proxyTLS, p, produced)
		if err != nil {
			return nil, nil, "", "", fmt.Errorf("principal_mode client: %w", err)
		}
		principalSection = pm
	}
	desc = fmt.Sprintf("real Kafka rows: Apache Kafka %s, one KRaft node on this machine; direct: its SASL_SSL listener (TLS + SCRAM-SHA-512); "+
		"proxy: scram-proxy (TLS + SCRAM-SHA-512) before its SASL_PLAINTEXT listener, so the broker's own (JVM) TLS is not in that path", c.Artifacts.Version)
	return rows, busy, desc, principalSection, nil
}

// createBenchTopic makes the one-partition topic the produce and consume
// phases use, over the PLAINTEXT listener.
func createBenchTopic(c *kafkabed.Cluster) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap(kafkabed.Plaintext)...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, topic)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return r.Err
		}
	}
	return nil
}

// consumeBytes reads partition 0 of the topic from offset 0 until limit
// bytes of values have arrived (or a minute passed) and returns MiB/s.
func consumeBytes(t target, limit int64) sample {
	cl := client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(10<<20))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int64
	start, busy := time.Now(), meter(t)
	for n < limit && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { n += int64(len(r.Value)) })
	}
	el := time.Since(start).Seconds()
	return sample{mib: float64(n) / el / (1 << 20), busy: busy(), secs: el}
}
