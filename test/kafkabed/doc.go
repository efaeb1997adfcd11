// Package kafkabed runs real Apache Kafka for the integration tests and for
// people trying the proxy against the real thing: the pinned Kafka jars
// (pom.xml, resolved with Maven into a cache on first use) and a KRaft
// cluster of combined broker+controller nodes on loopback, formatted with
// SCRAM users, the StandardAuthorizer and a delegation-token secret key.
//
// Every node has three client listeners, each on its own free port:
// SASL_SSL (SCRAM-SHA-512/256 over TLS, for clients that go direct),
// SASL_PLAINTEXT and PLAINTEXT (the proxy's upstream, with or without its
// own SASL identity). The JVMs run in their own process groups and die with
// the process that started them.
//
//	c, err := kafkabed.Start(ctx, kafkabed.Config{Nodes: 1,
//		Users: map[string]string{"admin": "admin-secret"}, SuperUsers: []string{"admin"}})
//	defer c.Stop()
//	c.Bootstrap(kafkabed.SASLPlaintext) // ["127.0.0.1:port"]
//
// Kafka's tools and Java programs run from the same jars with
// Artifacts.Command; scripts/kafka-testbed.sh (which builds
// ./kafkabed/cmd/kafka-testbed of the test module) starts a cluster for a
// person and prints how to reach it.
package kafkabed
