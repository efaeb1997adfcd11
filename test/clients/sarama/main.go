// Command sarama is the IBM/sarama driver for the client matrix: produce
// KAFKA_COUNT records, consume them in a consumer group, print RESULT (see
// ../README.md). sarama's SCRAM client is xdg-go's, with SASLprep.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/scram-proxy/scram-proxy/test/clients/internal/driverenv"
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

func main() { driverenv.Main(run) }

func run(env driverenv.Env) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = env.TLS
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.User, cfg.Net.SASL.Password = env.User, env.Password
	gen := scram.SHA512
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	if env.Mechanism == "SCRAM-SHA-256" {
		gen, cfg.Net.SASL.Mechanism = scram.SHA256, sarama.SASLTypeSCRAMSHA256
	}
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgClient{gen: gen} }
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	brokers := []string{env.Bootstrap}

	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, v := range env.Values("sarama") {
		want[v] = true
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: env.Topic, Value: sarama.StringEncoder(v)}); err != nil {
			return err
		}
	}
	prod.Close()

	group, err := sarama.NewConsumerGroup(brokers, env.Group, cfg)
	if err != nil {
		return err
	}
	defer group.Close()
	h := &handler{want: want, seen: map[string]bool{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), env.Budget)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{env.Topic}, h); err != nil {
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
	return env.Result(len(want), seen)
}
