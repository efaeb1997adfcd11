// Command franz-go is the franz-go (kgo) driver for the client matrix:
// produce KAFKA_COUNT records, consume them in a consumer group, print
// RESULT (see ../README.md). KAFKA_TOKEN_ID and KAFKA_TOKEN_HMAC (base64)
// switch to a delegation-token login (tokenauth=true).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
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
	auth := scram.Auth{User: os.Getenv("KAFKA_USER"), Pass: os.Getenv("KAFKA_PASSWORD")}
	if id := os.Getenv("KAFKA_TOKEN_ID"); id != "" {
		auth = scram.Auth{User: id, Pass: os.Getenv("KAFKA_TOKEN_HMAC"), IsToken: true}
	}
	var mech sasl.Mechanism = auth.AsSha512Mechanism()
	if os.Getenv("KAFKA_MECHANISM") == "SCRAM-SHA-256" {
		mech = auth.AsSha256Mechanism()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(budget)*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(os.Getenv("KAFKA_BOOTSTRAP")), kgo.SASL(mech),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})}
	prod, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := 0; i < count; i++ {
		v := fmt.Sprintf("franz-go-%s-%d", topic, i)
		want[v] = true
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	prod.Close()
	cons, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(os.Getenv("KAFKA_GROUP")), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < count && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if want[string(r.Value)] {
				seen[string(r.Value)] = true
			}
		})
	}
	if err := cons.CommitUncommittedOffsets(context.Background()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	fmt.Printf("RESULT produced=%d consumed=%d\n", count, len(seen))
	if len(seen) != count {
		return fmt.Errorf("consumed %d of %d", len(seen), count)
	}
	return nil
}
