// Package protocol is scram-proxy's pure Kafka wire codec: the one frame
// reader (FrameReader: size prefixes with caps checked before allocation,
// buffers grown as bytes arrive, pooled by BufferPool), request and response
// headers, and the per-API facts (header flexibility, Produce acks) the relay
// needs.
//
// It never imports net, logging, config or metrics; it works on byte slices
// and io.Reader/io.Writer, so every decoder here is fuzzed in isolation.
package protocol
