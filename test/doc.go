// Package test holds scram-proxy's integration tests: the built binary runs
// as a process between an upstream (a franz-go kfake cluster, or real Apache
// Kafka from kafkabed) and real Kafka clients (franz-go, sarama, kafka-go,
// kcat/librdkafka, kafka-python, confluent-kafka, kafkajs) over TLS and SCRAM
// on loopback.
//
// The directory is a Go module of its own (github.com/scram-proxy/scram-proxy/test,
// replacing the product module with ../), so the client libraries the tests
// drive stay out of the product's go.mod. Run it with `go test ./...` here,
// or `make test` at the root. Configurations are typed config.Config values
// written with config.Marshal; hand-driven connections use
// internal/protocol/protocoltest.Wire of the product module.
package test
