#!/usr/bin/env bash
# Starts the real Apache Kafka test bed (test/kafkabed) in the foreground:
# fetches the pinned Kafka jars with Maven on first use, starts a KRaft
# cluster on loopback, writes a scram-proxy configuration in front of it, and
# prints the listeners, users and commands. Ctrl-C stops it.
#
#   scripts/kafka-testbed.sh [-nodes 3] [-dir DIR] [-proxy-listen 127.0.0.1:9096]
#   scripts/kafka-testbed.sh -fetch-only    # only resolve the jars
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
# The test bed is in the test module (test/go.mod); built into bin/ so that
# relative paths in the arguments stay relative to the repository root.
go -C test build -o ../bin/kafka-testbed ./kafkabed/cmd/kafka-testbed
exec bin/kafka-testbed "$@"
