"""confluent-kafka (librdkafka) driver. Run with /usr/bin/python3.
See ../README.md for the contract."""
import os
import sys
import time

from confluent_kafka import Consumer, Producer

env = os.environ
count = int(env.get("KAFKA_COUNT", "20"))
budget = float(env.get("KAFKA_TIMEOUT_SEC", "60"))
topic = env["KAFKA_TOPIC"]
common = {
    "bootstrap.servers": env["KAFKA_BOOTSTRAP"],
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": env.get("KAFKA_MECHANISM", "SCRAM-SHA-512"),
    "sasl.username": env["KAFKA_USER"],
    "sasl.password": env["KAFKA_PASSWORD"],
    "ssl.ca.location": env["KAFKA_CA_FILE"],
}
deadline = time.time() + budget
want = {f"confluent-{topic}-{i}" for i in range(count)}

delivered = []
errors = []


def on_delivery(err, msg):
    (errors if err else delivered).append(err or msg)


producer = Producer({**common, "acks": "all"})
for v in sorted(want):
    producer.produce(topic, v.encode(), on_delivery=on_delivery)
remaining = producer.flush(max(1.0, deadline - time.time()))
if errors or remaining:
    print(f"produce failed: {errors[:3]} remaining={remaining}", file=sys.stderr)

consumer = Consumer({**common, "group.id": env["KAFKA_GROUP"], "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
consumer.subscribe([topic])
seen = set()
while len(seen) < count and time.time() < deadline:
    msg = consumer.poll(0.5)
    if msg is None:
        continue
    if msg.error():
        print(f"consume error: {msg.error()}", file=sys.stderr)
        continue
    v = msg.value().decode(errors="replace")
    if v in want:
        seen.add(v)
if seen:
    consumer.commit(asynchronous=False)
consumer.close()
print(f"RESULT produced={len(delivered)} consumed={len(seen)}")
sys.exit(0 if len(delivered) == count == len(seen) else 1)
