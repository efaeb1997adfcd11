// Command sarama is the IBM/sarama driver for the client matrix: produce
// KAFKA_COUNT records, consume them in a consumer group, print RESULT (see
// ../README.md). sarama's SCRAM client is xdg-go's, with SASLprep.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

type xdgClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (x *xdgClient) Begin(user, pass, authz string) error {
	c, err := x.gen.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	x.conv = c.NewConversation()
	return nil
}
func (x *xdgClient) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgClient) Done() bool                            { return x.conv.Done() }

type handler struct {
	mu   sync.Mutex
	want map[string]bool
	seen map[string]bool
	done chan struct{}
	once sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		if h.want[string(m.Value)] {
			h.seen[string(m.Value)] = true
		}
		if len(h.seen) == len(h.want) {
			h.once.Do(func() { close(h.done) })
		}
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

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
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.User, cfg.Net.SASL.Password = os.Getenv("KAFKA_USER"), os.Getenv("KAFKA_PASSWORD")
	gen := scram.SHA512
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	if os.Getenv("KAFKA_MECHANISM") == "SCRAM-SHA-256" {
		gen, cfg.Net.SASL.Mechanism = scram.SHA256, sarama.SASLTypeSCRAMSHA256
	}
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgClient{gen: gen} }
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	brokers := []string{os.Getenv("KAFKA_BOOTSTRAP")}

	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for i := 0; i < count; i++ {
		v := fmt.Sprintf("sarama-%s-%d", topic, i)
		want[v] = true
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
			return err
		}
	}
	prod.Close()

	group, err := sarama.NewConsumerGroup(brokers, os.Getenv("KAFKA_GROUP"), cfg)
	if err != nil {
		return err
	}
	defer group.Close()
	h := &handler{want: want, seen: map[string]bool{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(budget)*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				fmt.Fprintln(os.Stderr, "consume:", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
	}
	h.mu.Lock()
	seen := len(h.seen)
	h.mu.Unlock()
	fmt.Printf("RESULT produced=%d consumed=%d\n", count, seen)
	if seen != count {
		return fmt.Errorf("consumed %d of %d", seen, count)
	}
	return nil
}
