"""confluent-kafka driver (Debian python3-confluent-kafka, on librdkafka). See
../README.md for the contract. Run with the system interpreter, which is the
one that has the Debian package: /usr/bin/python3 run.py
"""
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from driverenv import Run  # noqa: E402 (test/clients/driverenv.py)

env = os.environ
run = Run("confluent")
delivered = set()

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
        run.produced = len(delivered)


try:
    producer = Producer({**common, "acks": "all", "message.timeout.ms": int(run.left() * 1000)})
    for v in sorted(run.want):
        producer.produce(run.topic, v.encode(), on_delivery=on_delivery)
    while producer.flush(0.2) > 0 and time.monotonic() < run.deadline:
        if fatal:
            run.finish(1, f"producer: {fatal[0]}")
    if len(delivered) != run.count:
        run.finish(1, f"producer: {len(delivered)} of {run.count} records acknowledged")

    consumer = Consumer({**common, "group.id": env["KAFKA_GROUP"],
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([run.topic])
    while run.running():
        if fatal:
            run.finish(1, f"consumer: {fatal[0]}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                print(f"consume error: {msg.error()}", file=sys.stderr)
            continue
        v = (msg.value() or b"").decode(errors="replace")
        if v in run.want:
            run.seen.add(v)
    if run.seen:
        # Commits the positions of everything polled (synchronously).
        consumer.commit(asynchronous=False)
    consumer.close()
except Exception as e:  # report whatever the client raised, then fail
    run.finish(1, f"{type(e).__name__}: {e}")

run.end()
