"""kafka-python driver (Debian python3-kafka 2.0.2). See ../README.md for the
contract. Run with the system interpreter, which is the one that has the
Debian package: /usr/bin/python3 run.py

kafka-python 2.0.2 always authenticates with SaslHandshake v0 followed by raw
(unframed) SCRAM messages; it has no SaslAuthenticate path. Nothing here
changes that: exercising that path through the proxy is the point of this
driver.
"""
import logging
import os
import sys

from kafka import KafkaConsumer, KafkaProducer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from driverenv import Run  # noqa: E402 (test/clients/driverenv.py)

# kafka-python logs connection and auth failures (then retries them); show
# them, on stderr, for when a run fails.
logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")

env = os.environ
run = Run("kafka-python")

common = dict(
    bootstrap_servers=env["KAFKA_BOOTSTRAP"],
    security_protocol="SASL_SSL",
    sasl_mechanism=env.get("KAFKA_MECHANISM", "SCRAM-SHA-512"),
    sasl_plain_username=env["KAFKA_USER"],
    sasl_plain_password=env["KAFKA_PASSWORD"],
    ssl_cafile=env["KAFKA_CA_FILE"],
    # Without api_version, 2.0.2 probes the broker at construction time
    # (check_version): a blocking connect + TLS + SCRAM login + ApiVersions
    # under api_version_auto_timeout_ms, 2s by default, that raises
    # NoBrokersAvailable when the machine is busy (go test -race running
    # other clients in parallel). The probe's answer is capped at (2, 5, 0),
    # the newest version 2.0.2 knows, which is what it reports for any
    # broker of 2.5 or later (and through the proxy). Naming it skips the
    # probe and its extra connection; it only picks request versions, not
    # the SASL path (SaslHandshake v0 with raw tokens either way).
    api_version=(2, 5, 0),
    request_timeout_ms=30000,
)

try:
    producer = KafkaProducer(acks="all", max_block_ms=int(run.left() * 1000), **common)
    futures = [producer.send(run.topic, v.encode()) for v in sorted(run.want)]
    for f in futures:
        f.get(timeout=run.left())
        run.produced += 1
    producer.close(timeout=run.left())

    consumer = KafkaConsumer(
        run.topic,
        group_id=env["KAFKA_GROUP"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **common,
    )
    while run.running():
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                v = (r.value or b"").decode(errors="replace")
                if v in run.want:
                    run.seen.add(v)
    # Commits the positions of everything polled (synchronously).
    consumer.commit()
    consumer.close(autocommit=False)
except Exception as e:  # report whatever kafka-python raised, then fail
    run.finish(1, f"{type(e).__name__}: {e}")

run.end()
