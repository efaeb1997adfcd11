// Command kafka-go is the segmentio/kafka-go driver for the client matrix:
// produce KAFKA_COUNT records, consume them in a consumer group, print
// RESULT (see ../README.md).
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/scram-proxy/scram-proxy/test/clients/internal/driverenv"
)

func main() { driverenv.Main(run) }

func run(env driverenv.Env) error {
	algo := scram.SHA512
	if env.Mechanism == "SCRAM-SHA-256" {
		algo = scram.SHA256
	}
	mech, err := scram.Mechanism(algo, env.User, env.Password)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), env.Budget)
	defer cancel()
	w := &kafka.Writer{
		Addr:         kafka.TCP(env.Bootstrap),
		Topic:        env.Topic,
		RequiredAcks: kafka.RequireAll,
		Transport:    &kafka.Transport{TLS: env.TLS, SASL: mech},
	}
	want := map[string]bool{}
	var msgs []kafka.Message
	for _, v := range env.Values("kafka-go") {
		want[v] = true
		msgs = append(msgs, kafka.Message{Value: []byte(v)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	w.Close()

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{env.Bootstrap},
		GroupID:     env.Group,
		Topic:       env.Topic,
		StartOffset: kafka.FirstOffset,
		Dialer:      &kafka.Dialer{TLS: env.TLS, SASLMechanism: mech, Timeout: 10 * time.Second},
		MaxWait:     200 * time.Millisecond,
	})
	defer r.Close()
	seen := map[string]bool{}
	for len(seen) < env.Count {
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
	return env.Result(len(msgs), len(seen))
}
