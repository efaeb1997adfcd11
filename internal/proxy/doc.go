// Package proxy accepts Kafka client connections, runs each through the
// SASL gate as an explicit state machine, and relays authenticated traffic to
// an upstream broker, rewriting the responses that carry broker endpoints.
//
// It depends only on interfaces it declares (upstream dialing, API versions,
// metrics) plus the pure protocol and sasl packages, so sessions are tested
// with in-memory fakes.
package proxy
