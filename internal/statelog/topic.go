package statelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// TopicError refuses an existing state topic whose settings differ from
// what the proxy needs: every difference, each with what was found and what
// is wanted. The proxy does not change an existing topic itself.
type TopicError struct {
	Topic      string
	Mismatches []Mismatch
}

// Mismatch is one setting of the state topic that differs.
type Mismatch struct {
	Setting     string // "partitions", "replication factor", "cleanup.policy", "min.insync.replicas"
	Found, Want string
}

func (e *TopicError) Error() string {
	parts := make([]string, 0, len(e.Mismatches))
	for _, m := range e.Mismatches {
		parts = append(parts, fmt.Sprintf("%s is %s, want %s", m.Setting, m.Found, m.Want))
	}
	return fmt.Sprintf("state topic %q exists with other settings than the proxy needs: %s "+
		"(change them with kafka-configs/kafka-reassign-partitions, or delete the topic, or name another in state.kafka.topic)",
		e.Topic, strings.Join(parts, "; "))
}

// ensureTopic creates the state topic if it is missing (one partition,
// compacted, the configured replication factor and min.insync.replicas)
// and checks the settings of one that exists; a mismatch is a *TopicError.
func (l *Log) ensureTopic(ctx context.Context) error {
	adm := kadm.NewClient(l.prod)
	topic := l.o.Topic
	details, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe state topic %q: %w", topic, err)
	}
	td, ok := details[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		configs := map[string]*string{
			"cleanup.policy":      ptr("compact"),
			"min.insync.replicas": ptr(strconv.Itoa(l.o.MinInsyncReplicas)),
		}
		created, err := adm.CreateTopic(ctx, 1, l.o.ReplicationFactor, configs, topic)
		switch {
		case err == nil:
			l.setTopicID(created.ID)
			// Created with exactly the settings checked below.
			l.o.Logger.Info("state topic created", zap.String("topic", topic),
				zap.Int16("replication_factor", l.o.ReplicationFactor), zap.Int("min_insync_replicas", l.o.MinInsyncReplicas))
			return nil
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another proxy created it first: check it like any other.
		default:
			return fmt.Errorf("create state topic %q: %w", topic, err)
		}
		if details, err = adm.ListTopicsWithInternal(ctx, topic); err != nil {
			return fmt.Errorf("describe state topic %q: %w", topic, err)
		}
		td = details[topic]
	}
	if td.Err != nil {
		return fmt.Errorf("describe state topic %q: %w", topic, td.Err)
	}
	l.setTopicID(td.ID)
	var mm []Mismatch
	if n := len(td.Partitions); n != 1 {
		mm = append(mm, Mismatch{"partitions", strconv.Itoa(n), "1"})
	}
	if p, ok := td.Partitions[0]; ok && len(p.Replicas) != int(l.o.ReplicationFactor) {
		mm = append(mm, Mismatch{"replication factor", strconv.Itoa(len(p.Replicas)), strconv.Itoa(int(l.o.ReplicationFactor)) + " (state.kafka.replication_factor)"})
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe state topic %q configs: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe state topic %q configs: %w", topic, err)
	}
	found := map[string]string{}
	for _, c := range rc.Configs {
		found[c.Key] = c.MaybeValue()
	}
	quote := func(k string) string {
		if v, ok := found[k]; ok {
			return strconv.Quote(v)
		}
		return "not reported"
	}
	if found["cleanup.policy"] != "compact" {
		mm = append(mm, Mismatch{"cleanup.policy", quote("cleanup.policy"), `"compact"`})
	}
	if want := strconv.Itoa(l.o.MinInsyncReplicas); found["min.insync.replicas"] != want {
		mm = append(mm, Mismatch{"min.insync.replicas", quote("min.insync.replicas"), strconv.Quote(want) + " (state.kafka.min_insync_replicas)"})
	}
	if len(mm) > 0 {
		return &TopicError{Topic: topic, Mismatches: mm}
	}
	return nil
}

func ptr(s string) *string { return &s }

func (l *Log) setTopicID(id [16]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.topicID = id
}

// TopicID is the state topic's id, known once Restore has returned (all
// zeros from a cluster without topic ids).
func (l *Log) TopicID() [16]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.topicID
}
