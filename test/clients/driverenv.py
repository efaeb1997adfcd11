"""The driver contract (README.md) for the Python drivers: settings from the
environment, the overall deadline, and the RESULT line, printed exactly once
however the run ends. The Go drivers share internal/driverenv the same way.
"""
import os
import sys
import threading
import time


class Run:
    def __init__(self, client):
        env = os.environ
        self.client = client
        self.count = int(env.get("KAFKA_COUNT", "20"))
        self.budget = float(env.get("KAFKA_TIMEOUT_SEC", "60"))
        self.deadline = time.monotonic() + self.budget
        self.topic = env["KAFKA_TOPIC"]
        self.want = {f"{client}-{self.topic}-{i}" for i in range(self.count)}
        self.produced = 0  # acknowledged records
        self.seen = set()  # wanted values consumed
        self._done = threading.Lock()
        # Clients have blocking calls without a timeout (kafka-python's
        # commit() and close(), librdkafka's close), so a watchdog holds the
        # run to the budget.
        watchdog = threading.Timer(self.budget + 3, self.finish, (3, f"timed out after {self.budget:.0f}s"))
        watchdog.daemon = True
        watchdog.start()

    def left(self, floor=1.0):
        """Seconds until the deadline, at least floor."""
        return max(floor, self.deadline - time.monotonic())

    def running(self):
        """Whether values are still missing and time is left."""
        return len(self.seen) < self.count and time.monotonic() < self.deadline

    def finish(self, code, err=None):
        """Prints the RESULT line once and exits with code."""
        if not self._done.acquire(blocking=False):
            threading.Event().wait()  # the other caller is exiting the process
        if err:
            print(f"{self.client} driver: {err}", file=sys.stderr)
        print(f"RESULT produced={self.produced} consumed={len(self.seen)}", flush=True)
        sys.stderr.flush()
        os._exit(code)

    def end(self):
        """Exits 0 when every value was produced and consumed, else 1."""
        if len(self.seen) < self.count:
            self.finish(1, f"consumed {len(self.seen)} of {self.count} values before the {self.budget:.0f}s budget ran out")
        self.finish(0 if self.produced == self.count == len(self.seen) else 1)
