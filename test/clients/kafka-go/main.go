// Command kafka-go is the segmentio/kafka-go driver for the client matrix:
// produce KAFKA_COUNT records, consume them in a consumer group, print
// RESULT (see ../README.md).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	count, _ := strconv.Atoi(os.Getenv("KAFKA_COUNT"))
	budget, _ := strconv.Atoi(os.Getenv("KAFKA_TIMEOUT_SEC"))
	topic := os.Getenv("KAFKA_TOPIC")
	ca, err := os.ReadFile(os.Getenv("KAFKA_CA_FILE"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	algo := scram.SHA512
	if os.Getenv("KAFKA_MECHANISM") == "SCRAM-SHA-256" {
		algo = scram.SHA256
	}
	mech, err := scram.Mechanism(algo, os.Getenv("KAFKA_USER"), os.Getenv("KAFKA_PASSWORD"))
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(budget)*time.Second)
	defer cancel()

	w := &kafka.Writer{
		Addr:         kafka.TCP(os.Getenv("KAFKA_BOOTSTRAP")),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		Transport:    &kafka.Transport{TLS: tlsCfg, SASL: mech},
	}
	want := map[string]bool{}
	var msgs []kafka.Message
	for i := 0; i < count; i++ {
		v := fmt.Sprintf("kafka-go-%s-%d", topic, i)
		want[v] = true
		msgs = append(msgs, kafka.Message{Value: []byte(v)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	w.Close()

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{os.Getenv("KAFKA_BOOTSTRAP")},
		GroupID:     os.Getenv("KAFKA_GROUP"),
		Topic:       topic,
		StartOffset: kafka.FirstOffset,
		Dialer:      &kafka.Dialer{TLS: tlsCfg, SASLMechanism: mech, Timeout: 10 * time.Second},
		MaxWait:     200 * time.Millisecond,
	})
	defer r.Close()
	seen := map[string]bool{}
	for len(seen) < count {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			break
		}
		if want[string(m.Value)] {
			seen[string(m.Value)] = true
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	fmt.Printf("RESULT produced=%d consumed=%d\n", count, len(seen))
	if len(seen) != count {
		return fmt.Errorf("consumed %d of %d", len(seen), count)
	}
	return nil
}
