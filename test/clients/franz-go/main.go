// Command franz-go is the franz-go (kgo) driver for the client matrix:
// produce KAFKA_COUNT records, consume them in a consumer group, print
// RESULT (see ../README.md). KAFKA_TOKEN_ID and KAFKA_TOKEN_HMAC (base64)
// switch to a delegation-token login (tokenauth=true).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scram-proxy/scram-proxy/test/clients/internal/driverenv"
)

func main() { driverenv.Main(run) }

func run(env driverenv.Env) error {
	auth := scram.Auth{User: env.User, Pass: env.Password}
	if id := os.Getenv("KAFKA_TOKEN_ID"); id != "" {
		auth = scram.Auth{User: id, Pass: os.Getenv("KAFKA_TOKEN_HMAC"), IsToken: true}
	}
	var mech sasl.Mechanism = auth.AsSha512Mechanism()
	if env.Mechanism == "SCRAM-SHA-256" {
		mech = auth.AsSha256Mechanism()
	}
	ctx, cancel := context.WithTimeout(context.Background(), env.Budget)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(env.Bootstrap), kgo.SASL(mech), kgo.DialTLSConfig(env.TLS)}
	prod, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(env.Topic))...)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var recs []*kgo.Record
	for _, v := range env.Values("franz-go") {
		want[v] = true
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	prod.Close()
	cons, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(env.Group), kgo.ConsumeTopics(env.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < env.Count && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if want[string(r.Value)] {
				seen[string(r.Value)] = true
			}
		})
	}
	if err := cons.CommitUncommittedOffsets(context.Background()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return env.Result(len(recs), len(seen))
}
