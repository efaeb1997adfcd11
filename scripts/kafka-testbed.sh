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
exec go run ./test/kafkabed/cmd/kafka-testbed "$@"
