// Package test holds scram-proxy's integration tests: the built binary runs
// as a process between a franz-go kfake cluster (the upstream) and real Kafka
// clients (franz-go, kcat/librdkafka, kafka-python, confluent-kafka, kafkajs)
// over TLS and SCRAM on loopback.
package test
