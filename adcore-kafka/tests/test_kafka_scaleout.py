"""Scale-out with ``adcore stream`` processes in one consumer group: SIGKILL, restart, SIGTERM.

The promise under test: whatever happens to a member, every input offset reaches the
output (at least once), duplicates stay within a batch or two, each input partition's
records keep their order, and a member stopped with SIGTERM commits what it wrote, so a
restart repeats nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import FAST_GROUP, Broker, adcore_command, stop_process

pytestmark = pytest.mark.service

PARTITIONS = 4
BATCH = 50
ACCOUNTS = 32


def _value(i: int) -> bytes:
    return json.dumps({"id": i, "amount": float((i * 7919) % 101), "n": i % 9}).encode()


def _key(i: int) -> bytes:
    return f"acct-{i % ACCOUNTS}".encode()


@pytest.fixture
def payments_model(tmp_path: Path, stream_env: dict[str, str]) -> str:
    """A stored model named ``payments``, as in the README's scale-out example."""
    train = tmp_path / "train.jsonl"
    train.write_text("".join(_value(i).decode() + "\n" for i in range(300)))
    subprocess.run(
        adcore_command(
            "fit",
            "--algo",
            "core:hbos",
            "--input",
            str(train),
            "--model",
            "payments",
            "--columns",
            "amount,n",
        ),
        env=stream_env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return "payments"


class Members:
    """``adcore stream`` processes of one group; each keeps its stderr and its events in files."""

    def __init__(self, source: str, sink: str, env: dict[str, str], logs: Path) -> None:
        self.args = adcore_command(
            "stream", "--model", "payments", "--source", source, "--sink", sink,
            "--batch-size", str(BATCH), "--max-delay-ms", "50",
        )  # fmt: skip
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.started)
        events = f"file://{self.logs / f'member-{n}.events'}"
        with (self.logs / f"member-{n}.log").open("wb") as log:
            process = subprocess.Popen(
                [*self.args, "--events", events], env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
        self.started.append(process)
        return process

    def scoring(self, process: subprocess.Popen[bytes]) -> bool:
        """Whether ``process`` has written a batch (so it is in the group, SIGTERM handler set)."""
        events = self.logs / f"member-{self.started.index(process)}.events"
        return events.is_file() and b"detection.completed" in events.read_bytes()

    def stderr(self) -> str:
        return "\n".join(
            f"--- member {i} (rc {p.poll()}):\n" + (self.logs / f"member-{i}.log").read_text()[-1500:]
            for i, p in enumerate(self.started)
        )

    def terminate(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, self.stderr()

    def stop_all(self) -> None:
        for process in self.started:
            stop_process(process, timeout=15)


class Producing:
    """Produces keyed records in chunks of 100 every 0.1 s until told to stop: consumers are
    mid-stream whenever the test kills one."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(broker, topic), daemon=True)
        self._thread.start()

    def _run(self, broker: Broker, topic: str) -> None:
        producer = broker.producer()
        while not self._stop.is_set():
            for i in range(self.count, self.count + 100):
                producer.produce(topic, _value(i), _key(i))
            producer.flush(15)
            self.count += 100
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.count


def _coordinates(records: list[Any]) -> list[tuple[int, int, int, dict[str, Any]]]:
    """``(output partition, input partition, input offset, record)`` per output record."""
    out = []
    for msg in records:
        record = json.loads(msg.value())
        meta = record["_meta"]
        out.append((msg.partition(), meta["partition"], meta["offset"], record))
    return out


def _seen(records: list[Any]) -> set[tuple[int, int]]:
    return {(in_partition, offset) for _, in_partition, offset, _ in _coordinates(records)}


def _wait(condition: Any, timeout: float, context: Any) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, context()
        time.sleep(0.1)


def test_sigkill_restart_loses_nothing_and_sigterm_commits(
    broker: Broker, stream_env: dict[str, str], payments_model: str, tmp_path: Path
) -> None:
    src = broker.create_topic("pay", PARTITIONS)
    dst = broker.create_topic("pay-scored", PARTITIONS)
    group = broker.unique("scorers")
    source = broker.url(src, f"group={group}&{FAST_GROUP}")
    members = Members(source, broker.url(dst), stream_env, tmp_path)
    reader = broker.reader(dst)
    producing: Producing | None = None
    try:
        a, b = members.start(), members.start()
        producing = Producing(broker, src)
        reader.until(lambda rs: len(rs) >= 800, timeout=40, context=members.stderr)  # both scoring
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        time.sleep(1.0)
        restarted = members.start()  # rejoins the group: the partitions are shared again
        _wait(lambda: members.scoring(restarted), 40, members.stderr)
        n = producing.stop()
        reader.until(lambda rs: len(_seen(rs)) >= n, timeout=60, context=members.stderr)
        members.terminate(restarted)
        time.sleep(3.0)  # tansu loses track of a group whose last two members leave at once
        members.terminate(b)
        rows = _coordinates(reader.settle(quiet=1.0))

        # At least once: every input offset reached the output, with its key and a score.
        assert len(_seen(reader.records)) == n
        for _, _, _, record in rows:
            assert record["score"] is not None and record["label"] in (0, 1)
        assert all(m.key() == _key(json.loads(m.value())["id"]) for m in reader.records)
        # Duplicates: the killed member's unacknowledged batch, plus at most one per rebalance.
        duplicates = len(rows) - n
        assert 0 <= duplicates <= 2 * BATCH, duplicates
        # Order: within each output partition, each input partition's offsets only go forward
        # once repeats are dropped (a re-read batch repeats a prefix, never reorders).
        sequences: dict[tuple[int, int], list[int]] = defaultdict(list)
        for out_partition, in_partition, offset, _ in rows:
            sequences[(out_partition, in_partition)].append(offset)
        for key, offsets in sequences.items():
            first_seen = list(dict.fromkeys(offsets))
            assert first_seen == sorted(first_seen), key

        # SIGTERM committed everything: a new member re-reads nothing, and scores new records.
        before = len(reader.records)
        last = members.start()
        broker.produce(src, [(_key(i), _value(i)) for i in range(n, n + 100)])
        reader.until(lambda rs: len(_seen(rs)) >= n + 100, timeout=30, context=members.stderr)
        reader.settle(quiet=1.5)
        assert len(reader.records) == before + 100, members.stderr()
        members.terminate(last)
    finally:
        if producing is not None:
            producing.stop()
        members.stop_all()
        reader.close()
