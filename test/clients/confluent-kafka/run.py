"""confluent-kafka driver (Debian python3-confluent-kafka, on librdkafka). See
../README.md for the contract. Run with the system interpreter, which is the
one that has the Debian package: /usr/bin/python3 run.py
"""
import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer

env = os.environ
count = int(env.get("KAFKA_COUNT", "20"))
budget = float(env.get("KAFKA_TIMEOUT_SEC", "60"))
deadline = time.monotonic() + budget
topic = env["KAFKA_TOPIC"]
want = {f"confluent-{topic}-{i}" for i in range(count)}
delivered = set()
seen = set()
done = threading.Lock()


def left(floor=1.0):
    return max(floor, deadline - time.monotonic())


def finish(code, err=None):
    """Prints the RESULT line once and exits with code."""
    if not done.acquire(blocking=False):
        threading.Event().wait()  # the other caller is exiting the process
    if err:
        print(f"confluent-kafka driver: {err}", file=sys.stderr)
    print(f"RESULT produced={len(delivered)} consumed={len(seen)}", flush=True)
    sys.stderr.flush()
    os._exit(code)


# Holds the run to the budget whatever librdkafka does on close.
watchdog = threading.Timer(budget + 3, finish, (3, f"timed out after {budget:.0f}s"))
watchdog.daemon = True
watchdog.start()

# librdkafka retries most failures quietly until its own timeouts; errors
# that retrying cannot fix end the run at once instead of at the deadline.
fatal = []
FATAL_CODES = {KafkaError._AUTHENTICATION, KafkaError._SSL,
               KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED,
               KafkaError.GROUP_AUTHORIZATION_FAILED}


def on_error(err):
    print(f"librdkafka: {err}", file=sys.stderr)
    if err.fatal() or err.code() in FATAL_CODES:
        fatal.append(err)


common = {
    "bootstrap.servers": env["KAFKA_BOOTSTRAP"],
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": env.get("KAFKA_MECHANISM", "SCRAM-SHA-512"),
    "sasl.username": env["KAFKA_USER"],
    "sasl.password": env["KAFKA_PASSWORD"],
    "ssl.ca.location": env["KAFKA_CA_FILE"],
    "error_cb": on_error,
}


def on_delivery(err, msg):
    if err:
        print(f"delivery failed: {err}", file=sys.stderr)
    else:
        delivered.add(msg.value())


try:
    producer = Producer({**common, "acks": "all", "message.timeout.ms": int(left() * 1000)})
    for v in sorted(want):
        producer.produce(topic, v.encode(), on_delivery=on_delivery)
    while producer.flush(0.2) > 0 and time.monotonic() < deadline:
        if fatal:
            finish(1, f"producer: {fatal[0]}")
    if len(delivered) != count:
        finish(1, f"producer: {len(delivered)} of {count} records acknowledged")

    consumer = Consumer({**common, "group.id": env["KAFKA_GROUP"],
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    while len(seen) < count and time.monotonic() < deadline:
        if fatal:
            finish(1, f"consumer: {fatal[0]}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                print(f"consume error: {msg.error()}", file=sys.stderr)
            continue
        v = (msg.value() or b"").decode(errors="replace")
        if v in want:
            seen.add(v)
    if seen:
        # Commits the positions of everything polled (synchronously).
        consumer.commit(asynchronous=False)
    consumer.close()
except Exception as e:  # report whatever the client raised, then fail
    finish(1, f"{type(e).__name__}: {e}")

if len(seen) < count:
    finish(1, f"consumed {len(seen)} of {count} values before the {budget:.0f}s budget ran out")
finish(0)
