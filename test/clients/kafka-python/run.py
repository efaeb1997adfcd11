"""kafka-python driver (Debian python3-kafka 2.0.2: SaslHandshake v0, raw
SCRAM tokens). Run with /usr/bin/python3. See ../README.md for the contract."""
import os
import sys
import time

from kafka import KafkaConsumer, KafkaProducer

env = os.environ
count = int(env.get("KAFKA_COUNT", "20"))
budget = float(env.get("KAFKA_TIMEOUT_SEC", "60"))
topic = env["KAFKA_TOPIC"]
common = dict(
    bootstrap_servers=env["KAFKA_BOOTSTRAP"],
    security_protocol="SASL_SSL",
    sasl_mechanism=env.get("KAFKA_MECHANISM", "SCRAM-SHA-512"),
    sasl_plain_username=env["KAFKA_USER"],
    sasl_plain_password=env["KAFKA_PASSWORD"],
    ssl_cafile=env["KAFKA_CA_FILE"],
    # 2.0.2 probes the broker version with requests that assume no SASL;
    # name a version so it goes straight to SaslHandshake v0.
    api_version=(2, 5, 0),
    request_timeout_ms=30000,
)
deadline = time.time() + budget
want = {f"kafka-python-{topic}-{i}" for i in range(count)}

producer = KafkaProducer(acks="all", **common)
futures = [producer.send(topic, v.encode()) for v in sorted(want)]
produced = 0
for f in futures:
    f.get(timeout=max(1.0, deadline - time.time()))
    produced += 1
producer.close()

consumer = KafkaConsumer(
    topic,
    group_id=env["KAFKA_GROUP"],
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    **common,
)
seen = set()
while len(seen) < count and time.time() < deadline:
    for records in consumer.poll(timeout_ms=500).values():
        for r in records:
            v = r.value.decode(errors="replace")
            if v in want:
                seen.add(v)
consumer.commit()
consumer.close()
print(f"RESULT produced={produced} consumed={len(seen)}")
sys.exit(0 if produced == count == len(seen) else 1)
