#!/usr/bin/env bash
# kcat (librdkafka) driver: produce KAFKA_COUNT lines, then consume them in a
# balanced consumer group. See ../README.md for the contract.
set -euo pipefail
: "${KAFKA_BOOTSTRAP:?}" "${KAFKA_CA_FILE:?}" "${KAFKA_USER:?}" "${KAFKA_PASSWORD:?}" "${KAFKA_TOPIC:?}" "${KAFKA_GROUP:?}"
mech="${KAFKA_MECHANISM:-SCRAM-SHA-512}"
count="${KAFKA_COUNT:-20}"
budget="${KAFKA_TIMEOUT_SEC:-60}"
common=(-b "$KAFKA_BOOTSTRAP" -X security.protocol=SASL_SSL -X "sasl.mechanisms=$mech"
  -X "sasl.username=$KAFKA_USER" -X "sasl.password=$KAFKA_PASSWORD" -X "ssl.ca.location=$KAFKA_CA_FILE")

values=$(for i in $(seq 0 $((count - 1))); do echo "kcat-$KAFKA_TOPIC-$i"; done)
# -P reads one record per line; kcat waits for every delivery report and
# exits non-zero if any failed.
printf '%s\n' "$values" | timeout "$budget" kcat "${common[@]}" -P -t "$KAFKA_TOPIC" -X acks=all
produced=$count

out=$(mktemp)
errs=$(mktemp)
trap 'rm -f "$out" "$errs"' EXIT
# Balanced consumer group mode; -c exits after that many messages (of any
# value: the topic must hold only this driver's records).
timeout "$budget" kcat "${common[@]}" -G "$KAFKA_GROUP" -X auto.offset.reset=earliest \
  -X enable.auto.commit=true -c "$count" -f '%s\n' "$KAFKA_TOPIC" >"$out" 2>"$errs" || true
consumed=$(sort -u "$out" | grep -c "^kcat-$KAFKA_TOPIC-" || true)
echo "RESULT produced=$produced consumed=$consumed"
if [ "$consumed" -ne "$count" ]; then
  echo "kcat consumer stderr:" >&2
  tail -20 "$errs" >&2
fi
[ "$produced" -eq "$count" ] && [ "$consumed" -eq "$count" ]
