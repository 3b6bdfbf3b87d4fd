"""The Kafka source and sink against a real broker: keys, metadata, commits, DLQ, events, rebalance."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from adcore.domain.events import EventBus
from adcore.messaging import Message, open_sink, open_source
from adcore.services.streaming import StreamConfig, StreamingService, StreamModel
from confluent_kafka import TopicPartition
from kafka_broker import FAST_GROUP, Broker

from adcore_kafka.sink import KafkaDeliveryError

pytestmark = pytest.mark.service


def _record(i: int, **extra: Any) -> bytes:
    return json.dumps({"id": i, "amount": float(i % 17), "n": i % 5, **extra}).encode()


def _poll_until(source: Any, count: int, timeout: float = 20.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} records polled"
        got += source.poll(count - len(got), 0.2)
    return got


def _committed(broker: Broker, topic: str, group: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        result = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in result}


@pytest.fixture
def service_thread() -> Iterator[Any]:
    """Runs a StreamingService in a thread; stops, joins and closes it at the end."""
    running: list[tuple[StreamingService, threading.Thread]] = []

    def start(source: str, sink: str, **kwargs: Any) -> StreamingService:
        from adcore.cli.run import build_detector

        detector = build_detector("core:hbos", None, 0.1, "contamination", None)
        config = StreamConfig(window=40, warmup=20, batch_size=25, max_delay_ms=50).validated()
        service = StreamingService(
            open_source(source), open_sink(sink), StreamModel.from_algorithm(detector), config, **kwargs
        )
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        running.append((service, thread))
        return service

    yield start
    for service, thread in running:
        service.stop()
        thread.join(30)
        service.close()


def test_round_trip_keeps_keys_and_metadata_and_commits_after_flush(broker: Broker) -> None:
    src, dst = broker.create_topic("rt-in", 2), broker.create_topic("rt-out", 2)
    group = broker.unique("g")
    records = [(f"acct-{i % 5}".encode(), _record(i)) for i in range(30)]
    broker.produce(src, records[:20])
    broker.produce(src, [(None, _record(i)) for i in range(20, 30)], partition=1)  # keyless
    source = open_source(broker.url(src, f"group={group}&{FAST_GROUP}"))
    sink = open_sink(broker.url(dst))
    try:
        polled = _poll_until(source, 30)
        assert all(isinstance(m, Message) for m in polled)
        for m in polled:
            assert set(m.metadata) >= {"topic", "partition", "offset", "key"}
            assert m.metadata["topic"] == src
        keys = {json.loads(m.value)["id"]: m.metadata["key"] for m in polled}
        assert keys == {i: (f"acct-{i % 5}" if i < 20 else None) for i in range(30)}
        for m in polled:
            sink.write(m.value, m.metadata)
        assert _committed(broker, src, group, 2) == {0: -1001, 1: -1001}  # nothing before commit
        sink.flush()
        source.commit()
        last = {}
        for m in polled:
            last[m.metadata["partition"]] = max(last.get(m.metadata["partition"], -1), m.metadata["offset"])
        assert _committed(broker, src, group, 2) == {p: o + 1 for p, o in last.items()}
    finally:
        source.close()
        sink.close()
    out = broker.reader(dst).until(lambda rs: len(rs) >= 30)
    by_id = {json.loads(m.value())["id"]: m for m in out}
    for i in range(20):
        assert by_id[i].key() == f"acct-{i % 5}".encode()  # the input's key, hence its partitioning
    for i in range(20, 30):
        assert by_id[i].key() is None
        assert by_id[i].partition() == 1  # keyless: the input's partition number


def test_binary_and_empty_keys_survive_and_tombstones_are_skipped(broker: Broker) -> None:
    src, dst = broker.create_topic("keys-in"), broker.create_topic("keys-out")
    group = broker.unique("g")
    producer = broker.producer()
    producer.produce(src, _record(0), b"\xff\x00binary")
    producer.produce(src, _record(1), b"")
    producer.produce(src, None, b"deleted")  # a tombstone
    producer.produce(src, _record(3), "ключ".encode())
    assert producer.flush(15) == 0
    source = open_source(broker.url(src, f"group={group}&{FAST_GROUP}"))
    sink = open_sink(broker.url(dst))
    try:
        polled = _poll_until(source, 4)
        assert polled[2].value == b""  # the tombstone reads as a blank line: the service skips it
        assert [m.metadata.get("key") for m in polled] == [None, "", "deleted", "ключ"]
        json.dumps([m.metadata for m in polled])
        for m in (polled[0], polled[1], polled[3]):
            sink.write(m.value, m.metadata)
        sink.flush()
        source.commit()
    finally:
        source.close()
        sink.close()
    out = broker.reader(dst).until(lambda rs: len(rs) >= 3)
    assert [m.key() for m in out] == [b"\xff\x00binary", b"", "ключ".encode()]


def test_restart_resumes_after_the_committed_offsets(broker: Broker) -> None:
    src = broker.create_topic("resume", 1)
    group = broker.unique("g")
    broker.produce(src, [(None, _record(i)) for i in range(10)])
    url = broker.url(src, f"group={group}&{FAST_GROUP}")
    first = open_source(url)
    try:
        batch = _poll_until(first, 6)
        first.commit()  # offsets 0-5 scored and flushed
        in_flight = _poll_until(first, 4)  # offsets 6-9 polled, then the process dies
    finally:
        first.close()  # closing commits nothing that was not committed
    broker.produce(src, [(None, _record(i)) for i in range(10, 15)])
    second = open_source(url)
    try:
        again = _poll_until(second, 9)
        time.sleep(0.5)
        again += second.poll(100, 0.5)
    finally:
        second.close()
    assert [m.metadata["offset"] for m in batch] == list(range(6))
    assert [m.metadata["offset"] for m in in_flight] == list(range(6, 10))
    assert [m.metadata["offset"] for m in again] == list(range(6, 15))  # the uncommitted, then new


def test_poison_records_go_to_the_dead_letter_topic_while_good_ones_flow(
    broker: Broker, service_thread: Any
) -> None:
    src, dst, dlq = (
        broker.create_topic("p-in", 2),
        broker.create_topic("p-out", 2),
        broker.create_topic("p-dlq"),
    )
    group = broker.unique("g")
    poison = {
        5: b"not json at all",
        12: b'{"id": 12, "amount": "twelve", "n": 1}',
        19: b'{"id": 19, "n": 1}',
        33: b"\xff\xfe binary",
    }
    records = [(f"k{i}".encode(), poison.get(i, _record(i))) for i in range(60)]
    broker.produce(src, records)
    service_thread(broker.url(src, f"group={group}&dlq={dlq}&{FAST_GROUP}"), broker.url(dst))
    out = broker.reader(dst).until(lambda rs: len(rs) >= 56)
    letters = broker.reader(dlq).until(lambda rs: len(rs) >= 4)
    assert sorted(json.loads(m.value())["id"] for m in out) == sorted(set(range(60)) - set(poison))
    by_key = {m.key(): m for m in letters}
    assert set(by_key) == {f"k{i}".encode() for i in poison}
    for i, raw in poison.items():
        letter = by_key[f"k{i}".encode()]
        assert letter.value() == raw  # the original bytes, replayable as they are
        headers = dict(letter.headers())
        assert headers["adcore.topic"] == src.encode()
        assert {"adcore.error", "adcore.partition", "adcore.offset", "adcore.line"} <= set(headers)
    assert b"not JSON" in dict(by_key[b"k5"].headers())["adcore.error"]
    assert b"amount" in dict(by_key[b"k12"].headers())["adcore.error"]
    # Every offset, poison included, ends up committed: no partition is stuck on a bad record
    # (offsets count from 0, so a partition's committed offset is its record count).
    deadline = time.monotonic() + 10
    while sum(_committed(broker, src, group, 2).values()) != 60:
        assert time.monotonic() < deadline, _committed(broker, src, group, 2)
        time.sleep(0.2)


def test_events_are_keyed_labelled_and_filtered(broker: Broker, service_thread: Any) -> None:
    src, dst = broker.create_topic("e-in"), broker.create_topic("e-out")
    all_events, anomalies = broker.create_topic("e-all"), broker.create_topic("e-anom")
    group = broker.unique("g")
    records = [(f"acct-{i % 3}".encode(), _record(i)) for i in range(99)]
    records.append((b"acct-odd", json.dumps({"id": 99, "amount": 1e6, "n": 4}).encode()))
    broker.produce(src, records)
    sinks = [open_sink(broker.url(all_events)), open_sink(broker.url(anomalies, "types=anomaly.detected"))]
    service = service_thread(
        broker.url(src, f"group={group}&{FAST_GROUP}"), broker.url(dst), events=EventBus(sinks=sinks)
    )
    broker.reader(dst).until(lambda rs: len(rs) >= 100)
    everything = broker.reader(all_events).until(
        lambda rs: any(dict(m.headers())["adcore.event"] == b"anomaly.detected" for m in rs)
    )
    types = {dict(m.headers())["adcore.event"].decode() for m in everything}
    assert {"detection.completed", "model.retrained", "anomaly.detected"} <= types
    for m in everything:
        event = json.loads(m.value())
        assert dict(m.headers())["adcore.event"].decode() == event["type"]
        if event["type"] == "anomaly.detected":
            assert m.key() == event["metadata"]["key"].encode()  # the anomalous record's own key
        else:
            assert m.key() == service.stream_id.encode()
    only = broker.reader(anomalies).settle(1.0)
    assert only and {dict(m.headers())["adcore.event"] for m in only} == {b"anomaly.detected"}
    odd = [json.loads(m.value()) for m in only if m.key() == b"acct-odd"]
    assert odd and odd[0]["metadata"]["offset"] == 99


def test_a_refused_delivery_raises_at_flush(broker: Broker) -> None:
    sink = open_sink(broker.url("bad topic!", "message.timeout.ms=2000"))  # the broker refuses the name
    sink.write(b'{"x": 1}', {"topic": "t", "partition": 0, "offset": 0, "key": "k"})
    with pytest.raises(KafkaDeliveryError, match="not delivered"):
        sink.flush()
    sink.close()  # nothing left to deliver: closes quietly


def test_rebalance_drops_unscored_records_of_revoked_partitions(broker: Broker) -> None:
    src = broker.create_topic("rb", 4)
    group = broker.unique("g")
    broker.produce(src, [(None, _record(i)) for i in range(4 * 60)], partition=None)
    url = broker.url(src, f"group={group}&{FAST_GROUP}")
    first = open_source(url)
    second = None
    held: list[Any] = []
    try:
        held += _poll_until(first, 4)  # handed out, not yet scored: the service's batch in progress
        second = open_source(url)
        deadline = time.monotonic() + 30
        while not second._consumer.assignment():  # the join triggers a rebalance of `first`
            assert time.monotonic() < deadline, "the second member never got partitions"
            held += first.poll(1, 0.05)
            second.poll(1, 0.05)
        for _ in range(5):  # let `first` finish its side of the rebalance
            held += first.poll(1, 0.05)
        mine = {tp.partition for tp in first._consumer.assignment()}
        theirs = {tp.partition for tp in second._consumer.assignment()}
        assert mine and theirs and not mine & theirs
        kept = first.retain(held)
        assert len(kept) < len(held)  # eager protocol: every pre-rebalance record is stale
        assert {m.metadata["partition"] for m in kept} <= mine
        for p in mine:
            offsets = [m.metadata["offset"] for m in kept if m.metadata["partition"] == p]
            assert offsets == sorted(set(offsets)), offsets  # no stale duplicate, order kept
        first.commit()
        committed = _committed(broker, src, group, 4)
        for p in theirs:
            assert committed[p] == -1001  # never commit what another member owns
        for p in mine:
            offsets = [m.metadata["offset"] for m in kept if m.metadata["partition"] == p]
            assert committed[p] == (max(offsets) + 1 if offsets else -1001)
    finally:
        first.close()
        if second is not None:
            second.close()
