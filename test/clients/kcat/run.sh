#!/usr/bin/env bash
# kcat (librdkafka) driver: produce KAFKA_COUNT lines with `kcat -P`, then read
# them back with `kcat -G` (balanced consumer group). See ../README.md for the
# contract. Run with: bash run.sh
set -euo pipefail

for v in KAFKA_BOOTSTRAP KAFKA_CA_FILE KAFKA_USER KAFKA_PASSWORD KAFKA_TOPIC KAFKA_GROUP; do
  if [ -z "${!v:-}" ]; then
    echo "kcat driver: $v is not set" >&2
    exit 2
  fi
done
if ! command -v kcat >/dev/null; then
  echo "kcat driver: kcat is not installed (run scripts/install-test-deps.sh)" >&2
  exit 2
fi
mech=${KAFKA_MECHANISM:-SCRAM-SHA-512}
count=${KAFKA_COUNT:-20}
budget=${KAFKA_TIMEOUT_SEC:-60}
deadline=$((SECONDS + budget))
# left prints the seconds left of the overall budget (at least 1).
left() {
  local n=$((deadline - SECONDS))
  echo $((n > 1 ? n : 1))
}

common=(-b "$KAFKA_BOOTSTRAP" -X security.protocol=SASL_SSL -X "sasl.mechanisms=$mech"
  -X "sasl.username=$KAFKA_USER" -X "sasl.password=$KAFKA_PASSWORD"
  -X "ssl.ca.location=$KAFKA_CA_FILE")

tmp=$(mktemp -d)
kpid=
cleanup() {
  if [ -n "$kpid" ]; then kill -TERM "$kpid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

for ((i = 0; i < count; i++)); do echo "kcat-$KAFKA_TOPIC-$i"; done >"$tmp/want"

# distinct prints how many distinct wanted values file $1 holds (one per line);
# any other value is ignored.
distinct() {
  { grep -xFf "$tmp/want" "$1" || true; } | sort -u | wc -l
}

# Produce: -P sends one record per input line and waits for every delivery
# report before exiting. message.timeout.ms keeps librdkafka's delivery retries
# inside the budget. At verbosity 3 kcat logs one "Message delivered" line per
# acknowledged record, which is the produced count.
prc=0
timeout -k 5 "$(left)" kcat "${common[@]}" -P -t "$KAFKA_TOPIC" -X acks=all \
  -X "message.timeout.ms=$(($(left) > 3 ? ($(left) - 2) * 1000 : 1000))" \
  -v -v -v <"$tmp/want" 2>"$tmp/produce.err" || prc=$?
produced=$(grep -c '^% Message delivered to partition' "$tmp/produce.err" || true)
if [ "$prc" -ne 0 ] || [ "$produced" -ne "$count" ]; then
  echo "kcat producer failed (exit $prc, $produced of $count delivered):" >&2
  grep -v '^% Message delivered' "$tmp/produce.err" | tail -20 >&2 || true
  echo "RESULT produced=$produced consumed=0"
  exit 1
fi

# Consume in the group. kcat -G has no "stop once these values are seen"
# option (-c counts every record, ours or not, and -e is per-assignment EOF),
# so kcat runs unbuffered (-u) into a file that is polled; once every value
# has been seen kcat gets SIGTERM (relayed by timeout), which it handles by
# leaving its poll loop and closing the consumer: librdkafka then commits the
# offsets it stored for the records it handed out and leaves the group.
# (enable.auto.commit is librdkafka's default; kcat also copies a -X of it to
# the legacy topic property auto.commit.enable, which only earns a warning.)
: >"$tmp/out"
timeout -k 5 "$(left)" kcat "${common[@]}" -G "$KAFKA_GROUP" \
  -X auto.offset.reset=earliest \
  -u -f '%s\n' "$KAFKA_TOPIC" >"$tmp/out" 2>"$tmp/consume.err" &
kpid=$!
while kill -0 "$kpid" 2>/dev/null; do
  if [ "$(distinct "$tmp/out")" -ge "$count" ]; then
    kill -TERM "$kpid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
crc=0
wait "$kpid" || crc=$?
kpid=
consumed=$(distinct "$tmp/out")
echo "RESULT produced=$produced consumed=$consumed"
if [ "$consumed" -ne "$count" ]; then
  echo "kcat consumer saw $consumed of $count values (exit $crc); its stderr:" >&2
  tail -20 "$tmp/consume.err" >&2
  exit 1
fi
