"""Fault injection: the Kafka broker goes away under a running ``adcore stream``.

The promise under test (issue 19, resilience): the broker stopped mid-run (SIGTERM, or
SIGKILL) and started again some seconds later on the same address with the same storage,
the one ``adcore stream`` process rides it out. Every input record reaches the output at
least once (records are told apart by their ``id`` field; duplicates are allowed and
counted), the process neither exits nor needs a restart, and its stderr holds a few
warning lines, never a traceback. A stream started while the broker is down waits for it,
saying so in one line per kind of error, and scores everything once it is up.

tansu keeps topics and committed offsets in S3 (moto) here, so a restart loses nothing on
the broker's side (see durable_broker.py); what is lost, if anything, is adcore's doing.
The figures (records, outage, duplicates, recovery) are printed; run with ``-s`` to see
them, and adcore-kafka's README quotes them.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from durable_broker import DurableBroker, moto_s3
from kafka_broker import FAST_GROUP, Broker, adcore_command, stop_process

pytestmark = pytest.mark.service

RECORDS = 3000
PARTITIONS = 2
BATCH = 100
OUTAGE_S = 5.0


def _value(i: int) -> bytes:
    return json.dumps({"id": i, "amount": float((i * 7919) % 101), "n": i % 9}).encode()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def durable(s3_endpoint: str, tmp_path: Path) -> Iterator[DurableBroker]:
    broker = DurableBroker(s3_endpoint, tmp_path)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def model(tmp_path: Path, stream_env: dict[str, str]) -> str:
    """A stored model, so every output record carries a score (no warm-up records)."""
    train = tmp_path / "train.jsonl"
    train.write_text("".join(_value(i).decode() + "\n" for i in range(300)))
    subprocess.run(
        adcore_command("fit", "--algo", "core:hbos", "--input", str(train), "--model", "faults",
                       "--columns", "amount,n"),
        env=stream_env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return "faults"


class Feed:
    """Produces records ``start..RECORDS-1``, 25 every 0.1 s, from a thread, the way an upstream
    service would: through the outage its producer queues them and retries on its own. At
    250 records/s, records are produced before, during and after a five-second outage."""

    def __init__(self, broker: Broker, topic: str, start: int) -> None:
        self.count = start
        self.failures: list[KafkaError] = []
        self._producer = Producer(
            {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 2,
             "on_delivery": self._delivered, "logger": logging.getLogger("test.feed")}
        )  # fmt: skip
        self._topic = topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _delivered(self, error: KafkaError | None, _msg: Any) -> None:
        if error is not None:
            self.failures.append(error)

    def _run(self) -> None:
        while self.count < RECORDS and not self._stop.is_set():
            for i in range(self.count, min(self.count + 25, RECORDS)):
                self._producer.produce(self._topic, _value(i), f"k-{i % 64}".encode())
            self.count = min(self.count + 25, RECORDS)
            self._producer.poll(0)
            time.sleep(0.1)

    def finish(self, timeout: float = 120.0) -> None:
        """Wait until every record was produced and acknowledged."""
        self._thread.join(timeout)
        assert self._producer.flush(timeout) == 0, "the feed could not deliver its records"
        assert not self.failures, self.failures[:3]

    def abandon(self) -> None:
        """Stop producing (a failed test): no wait for acknowledgements."""
        self._stop.set()
        self._thread.join(5)


class Stream:
    """One ``adcore stream`` process; its stderr goes to a file."""

    def __init__(
        self, source: str, sink: str, model: str, env: dict[str, str], log: Path, batch: int = BATCH
    ) -> None:
        self.log = log
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                adcore_command("stream", "--model", model, "--source", source, "--sink", sink,
                               "--batch-size", str(batch), "--max-delay-ms", "50"),
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip

    def stderr(self) -> str:
        return f"--- adcore stream (rc {self.process.poll()}):\n" + self.log.read_text()[-3000:]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


def _ids(records: list[Any]) -> list[int]:
    return [json.loads(m.value())["id"] for m in records]


def _recovery_s(records: list[Any], ids: range, restarted: float) -> float:
    """Seconds from the restart (epoch) until adcore produced the output of the first record
    in ``ids`` (records produced while the broker was down: they reach it only once it is up)."""
    stamps = [m.timestamp()[1] / 1000 for m in records if json.loads(m.value())["id"] in ids]
    return min(stamps) - restarted


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_broker_outage_mid_stream_loses_nothing(
    how: signal.Signals, durable: DurableBroker, model: str, stream_env: dict[str, str], tmp_path: Path
) -> None:
    broker = durable.start()
    src, dst = broker.create_topic("fault-in", PARTITIONS), broker.create_topic("fault-out", PARTITIONS)
    source = broker.url(src, f"group={broker.unique('scorers')}&{FAST_GROUP}")
    stream = Stream(source, broker.url(dst), model, stream_env, tmp_path / "stream.log")
    reader = broker.reader(dst)
    broker.produce(src, [(f"k-{i % 64}".encode(), _value(i)) for i in range(200)])
    feed: Feed | None = None
    try:
        reader.until(lambda rs: len(rs) >= 100, timeout=60, context=stream.stderr)  # scoring
        feed = Feed(broker, src, start=200)
        reader.until(lambda rs: len(rs) >= 600, timeout=60, context=stream.stderr)  # mid-run
        durable.stop(how)
        down_from = feed.count  # queued from here on: delivered only after the restart
        time.sleep(OUTAGE_S)
        assert stream.process.poll() is None, stream.stderr()
        durable.start()
        restarted = time.time()
        during = range(down_from, feed.count)
        feed.finish()
        reader.until(lambda rs: set(_ids(rs)) >= set(range(RECORDS)), timeout=120, context=stream.stderr)
        ids = _ids(reader.settle(quiet=1.0))

        # At least once: every input record was scored, some maybe twice (a batch in flight).
        assert set(ids) == set(range(RECORDS))
        duplicates = len(ids) - RECORDS
        assert 0 <= duplicates <= 2 * PARTITIONS * BATCH, duplicates
        for msg in reader.records:
            record = json.loads(msg.value())
            assert record["score"] is not None and record["label"] in (0, 1)
        # The same process rode it out; its stderr says what happened without a traceback.
        assert stream.process.poll() is None, stream.stderr()
        log = stream.log.read_text()
        assert "Traceback" not in log, log
        assert len(log.splitlines()) <= 15, log  # bounded: about one line per kind of error
        assert "working again" in log, log
        recovery = _recovery_s(reader.records, during, restarted)
        print(
            f"\n[faults] {how.name}: {RECORDS} records, {len(during)} produced while the broker was "
            f"down for {OUTAGE_S:.0f} s; duplicates {duplicates}; the first of those scored "
            f"{recovery:.2f} s after the restart; stderr:\n{log}"
        )
        assert stream.stop() == 0, stream.stderr()
    finally:
        if feed is not None:
            feed.abandon()
        stop_process(stream.process)
        reader.close()


def test_stream_started_while_broker_down_waits_for_it(
    durable: DurableBroker, model: str, stream_env: dict[str, str], tmp_path: Path
) -> None:
    broker = durable.start()
    src, dst = broker.create_topic("down-in", PARTITIONS), broker.create_topic("down-out", PARTITIONS)
    broker.produce(src, [(f"k-{i % 64}".encode(), _value(i)) for i in range(500)])
    durable.stop()
    source = broker.url(src, f"group={broker.unique('scorers')}&{FAST_GROUP}")
    stream = Stream(source, broker.url(dst), model, stream_env, tmp_path / "stream.log")
    try:
        time.sleep(OUTAGE_S)
        assert stream.process.poll() is None, stream.stderr()  # waiting, not exited
        waiting = stream.log.read_text()
        assert "Traceback" not in waiting, waiting
        assert "127.0.0.1" in waiting, waiting  # names the broker it cannot reach
        assert len(waiting.splitlines()) <= 6, waiting  # bounded: not one line per retry
        durable.start()
        started = time.monotonic()
        reader = broker.reader(dst)
        try:
            reader.until(lambda rs: set(_ids(rs)) >= set(range(500)), timeout=60, context=stream.stderr)
            print(f"\n[faults] started with the broker down: all scored {time.monotonic() - started:.1f} s "
                  f"after it came up; stderr while waiting:\n{waiting}")  # fmt: skip
        finally:
            reader.close()
        assert stream.stop() == 0, stream.stderr()
        assert "Traceback" not in stream.log.read_text(), stream.stderr()
    finally:
        stop_process(stream.process)


def test_outage_longer_than_delivery_timeout_exits_2_and_a_restart_loses_nothing(
    durable: DurableBroker, model: str, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """Past ``message.timeout.ms`` (5 min by default; 2 s here) the stream gives up with one
    line and exit code 2, having committed nothing it had not delivered: a supervisor's
    restart, once the broker is back, scores every record."""
    broker = durable.start()
    src, dst = broker.create_topic("long-in", PARTITIONS), broker.create_topic("long-out", PARTITIONS)
    broker.produce(src, [(f"k-{i % 64}".encode(), _value(i)) for i in range(RECORDS)])
    source = broker.url(src, f"group={broker.unique('scorers')}&{FAST_GROUP}")
    sink = broker.url(dst, "message.timeout.ms=2000")
    reader = broker.reader(dst)
    # Batches of 10, each waiting for its acknowledgements: the stream is still far from done
    # when the broker dies (its consumer has fetched ahead, so it holds records to write).
    first = Stream(source, sink, model, stream_env, tmp_path / "first.log", batch=10)
    second: Stream | None = None
    try:
        reader.until(lambda rs: len(rs) >= 1, timeout=60, context=first.stderr)
        durable.stop(signal.SIGKILL)  # the stream holds prefetched records it cannot deliver
        assert first.process.wait(60) == 2, first.stderr()
        log = first.log.read_text()
        assert "Traceback" not in log, log
        assert "not delivered" in log and "message.timeout.ms" in log, log
        durable.start()
        second = Stream(source, sink, model, stream_env, tmp_path / "second.log")
        reader.until(lambda rs: set(_ids(rs)) >= set(range(RECORDS)), timeout=90, context=second.stderr)
        duplicates = len(_ids(reader.settle(quiet=1.0))) - RECORDS
        print(f"\n[faults] outage past the delivery timeout: exit 2, restart scored all {RECORDS} "
              f"with {duplicates} duplicates; stderr:\n{log}")  # fmt: skip
        assert second.stop() == 0, second.stderr()
    finally:
        for stream in (first, second):
            if stream is not None:
                stop_process(stream.process)
        reader.close()


def test_sigterm_while_the_broker_is_down_exits_promptly(
    durable: DurableBroker, model: str, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """A stop request (a rolling update) during an outage ends the process in bounded time,
    not when the broker comes back; a new process then scores whatever was not committed."""
    broker = durable.start()
    src, dst = broker.create_topic("term-in", PARTITIONS), broker.create_topic("term-out", PARTITIONS)
    broker.produce(src, [(f"k-{i % 64}".encode(), _value(i)) for i in range(500)])
    source = broker.url(src, f"group={broker.unique('scorers')}&{FAST_GROUP}")
    reader = broker.reader(dst)
    first = Stream(source, broker.url(dst), model, stream_env, tmp_path / "first.log")
    second: Stream | None = None
    try:
        reader.until(lambda rs: set(_ids(rs)) >= set(range(500)), timeout=60, context=first.stderr)
        durable.stop(signal.SIGKILL)
        time.sleep(1.0)
        first.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert first.process.wait(40) == 0, first.stderr()
        took = time.monotonic() - started
        assert "Traceback" not in first.log.read_text(), first.stderr()
        durable.start()
        broker.produce(src, [(f"k-{i % 64}".encode(), _value(i)) for i in range(500, 1000)])
        second = Stream(source, broker.url(dst), model, stream_env, tmp_path / "second.log")
        reader.until(lambda rs: set(_ids(rs)) >= set(range(1000)), timeout=60, context=second.stderr)
        duplicates = len(_ids(reader.settle(quiet=1.0))) - 1000
        print(f"\n[faults] SIGTERM with the broker down: exit 0 after {took:.1f} s; the next process "
              f"scored the rest with {duplicates} duplicates")  # fmt: skip
        assert second.stop() == 0, second.stderr()
    finally:
        for stream in (first, second):
            if stream is not None:
                stop_process(stream.process)
        reader.close()
