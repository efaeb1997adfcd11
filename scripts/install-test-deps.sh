#!/usr/bin/env bash
# Installs the real Kafka clients the integration tests drive, when missing:
# kcat, kafka-python and confluent-kafka from Debian, kafkajs from npm (pinned
# by test/clients/kafkajs/package-lock.json). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install-test-deps: need root to run: $*" >&2; return 1; fi
}

if command -v kcat >/dev/null && /usr/bin/python3 -c 'import kafka, confluent_kafka' 2>/dev/null; then
  echo "present: kcat, python3-kafka, python3-confluent-kafka"
else
  echo "installing: kcat python3-kafka python3-confluent-kafka (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat python3-kafka python3-confluent-kafka >/dev/null
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing: nodejs npm (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

js=test/clients/kafkajs
if [ -f "$js/node_modules/kafkajs/package.json" ] &&
   [ "$(node -p "require('./$js/node_modules/kafkajs/package.json').version")" = "2.2.4" ]; then
  echo "present: kafkajs 2.2.4"
else
  echo "installing: kafkajs (npm ci)"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
