"""The source's bookkeeping with a scripted consumer: what is committed, when, and what is dropped.

A real broker (test_kafka_endpoints, test_kafka_scaleout) shows the happy paths; the rare
ones (a commit refused mid-rebalance, a lost assignment) are easier to provoke here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from adcore_kafka import source as source_module
from adcore_kafka.source import KafkaSource


class FakeMessage:
    def __init__(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes | None:
        return self._v


class FakeConsumer:
    """Hands out queued messages; like librdkafka, runs the answers to asynchronous commits
    (``on_commit``) and scripted rebalance callbacks inside ``consume``."""

    def __init__(self) -> None:
        self.queue: list[FakeMessage] = []
        self.before_next_consume: list[Callable[[], None]] = []
        self.commits: list[dict[tuple[str, int], int]] = []  # requests the broker accepted
        self.refuse: list[int] = []  # error codes for the next commits
        self.closed = False
        self.on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] = lambda e, p: None
        self._answers: list[Callable[[], None]] = []

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any, on_lost: Any) -> None:
        self.on_revoke, self.on_lost = on_revoke, on_lost

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        answers, self._answers = self._answers, []
        for answer in answers:
            answer()
        while self.before_next_consume:
            self.before_next_consume.pop(0)()
        out, self.queue = self.queue[:num_messages], self.queue[num_messages:]
        return out

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition] | None:
        error = KafkaError(self.refuse.pop(0)) if self.refuse else None
        if error is None:
            self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        if not asynchronous:
            if error is not None:
                raise KafkaException(error)
            return offsets
        self._answers.append(lambda: self.on_commit(error, offsets))
        return None

    def close(self) -> None:
        self.closed = True

    # -- scripting
    def add(self, partition: int, *offsets: int) -> None:
        self.queue += [FakeMessage("t", partition, o, b"k%d" % o, b'{"x": %d}' % o) for o in offsets]

    def revoke(self, *partitions: int) -> None:
        self.before_next_consume.append(
            lambda: self.on_revoke(self, [TopicPartition("t", p) for p in partitions])
        )

    def lose(self, *partitions: int) -> None:
        self.before_next_consume.append(
            lambda: self.on_lost(self, [TopicPartition("t", p) for p in partitions])
        )


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> FakeConsumer:
    fake = FakeConsumer()

    def make(config: dict[str, Any], errors: Any) -> FakeConsumer:
        fake.on_commit, fake.errors = config["on_commit"], errors
        return fake

    monkeypatch.setattr(source_module, "make_consumer", make)
    return fake


def _source() -> KafkaSource:
    return KafkaSource(("t",), {"group.id": "g"})


def test_commit_is_the_next_offset_per_partition(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0, 1, 2)
    consumer.add(1, 5, 6)
    assert len(source.poll(10, 0.1)) == 5
    source.commit()
    assert consumer.commits == [{("t", 0): 3, ("t", 1): 7}]
    source.commit()  # nothing new (the first is not even answered yet): no request at all
    source.poll(10, 0.1)  # the answer arrives
    source.commit()
    assert len(consumer.commits) == 1


def test_a_commit_refused_while_the_broker_is_away_is_sent_again(consumer: FakeConsumer) -> None:
    """The commit never waits for the broker; a refused one goes out again with the next."""
    source = _source()
    consumer.add(0, 0, 1)
    source.poll(10, 0.1)
    consumer.refuse = [KafkaError._TRANSPORT]
    source.commit()  # returns at once, broker or not
    consumer.add(0, 2)
    source.poll(10, 0.1)  # the refusal arrives: the offset is kept
    source.commit()
    assert consumer.commits == [{("t", 0): 3}]  # 2 refused, then 3 (it covers 2)
    source.poll(10, 0.1)
    source.close()
    assert consumer.commits == [{("t", 0): 3}]  # confirmed: close sends nothing again


def test_a_confirmed_commit_says_the_broker_is_back(
    consumer: FakeConsumer, caplog: pytest.LogCaptureFixture
) -> None:
    """Records handed out may have been fetched before the outage; a commit's answer cannot."""
    source = _source()
    consumer.errors(KafkaError(KafkaError._TRANSPORT, "Connection refused"))
    consumer.add(0, 0)
    source.poll(10, 0.1)
    assert "working again" not in caplog.text
    source.commit()
    source.poll(10, 0.1)  # the answer arrives
    assert caplog.text.count("working again") == 1


def test_records_of_a_revoked_partition_are_dropped_and_never_committed(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0, 1)
    consumer.add(1, 0, 1)
    batch = source.poll(10, 0.1)  # a batch being collected...
    consumer.revoke(1)  # ...when the group rebalances: partition 1 goes elsewhere
    consumer.add(0, 2)
    batch += source.poll(10, 0.1)
    kept = source.retain(batch)
    assert [(m.metadata["partition"], m.metadata["offset"]) for m in kept] == [(0, 0), (0, 1), (0, 2)]
    source.commit()
    assert consumer.commits == [{("t", 0): 3}]


def test_a_partition_that_comes_back_keeps_only_the_fresh_copies(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0, 1)
    batch = source.poll(10, 0.1)
    consumer.revoke(0)  # eager rebalance: everything revoked, partition 0 assigned again,
    consumer.add(0, 0, 1, 2)  # so librdkafka re-fetches it from the committed offset
    batch += source.poll(10, 0.1)
    kept = source.retain(batch)
    assert [m.metadata["offset"] for m in kept] == [0, 1, 2]
    assert all(m is not old for m in kept for old in batch[:2])
    source.commit()
    assert consumer.commits == [{("t", 0): 3}]


def test_a_commit_refused_mid_rebalance_is_retried_on_revoke(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0, 1, 2)
    source.poll(10, 0.1)
    consumer.refuse = [KafkaError.REBALANCE_IN_PROGRESS]
    source.commit()  # output flushed, commit deferred: no error, no loss
    assert consumer.commits == []
    consumer.revoke(0)
    source.poll(10, 0.1)
    assert consumer.commits == [{("t", 0): 3}]  # committed while we still owned it


def test_a_lost_assignment_commits_nothing(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0, 1)
    source.poll(10, 0.1)
    consumer.refuse = [KafkaError.ILLEGAL_GENERATION]
    source.commit()
    consumer.lose(0)
    source.poll(10, 0.1)
    source.commit()
    source.close()
    assert consumer.commits == [] and consumer.closed


def test_close_commits_only_what_was_flushed(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0, 1)
    source.poll(10, 0.1)
    consumer.refuse = [KafkaError.COORDINATOR_NOT_AVAILABLE]
    source.commit()  # deferred
    consumer.add(0, 2, 3)
    source.poll(10, 0.1)  # polled, never scored: the process is stopping
    source.close()
    source.close()  # idempotent
    assert consumer.commits == [{("t", 0): 2}] and consumer.closed


def test_close_gives_up_on_a_broker_that_never_answers(
    consumer: FakeConsumer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka's close can wait for ever on a commit the broker never answered."""
    never = threading.Event()
    monkeypatch.setattr(consumer, "close", lambda: never.wait(30))
    monkeypatch.setattr(source_module, "CLOSE_TIMEOUT_S", 0.2)
    source = _source()
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 5
    assert "exiting without leaving the group" in caplog.text
    never.set()


def test_an_unexpected_commit_error_stops_the_stream(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.add(0, 0)
    source.poll(10, 0.1)
    consumer.refuse = [KafkaError.GROUP_AUTHORIZATION_FAILED]
    source.commit()
    source.poll(10, 0.1)  # the refusal arrives...
    with pytest.raises(KafkaException):
        source.commit()  # ...and the next commit stops the stream (nothing was committed)


def test_tombstones_read_as_blank_records(consumer: FakeConsumer) -> None:
    source = _source()
    consumer.queue.append(FakeMessage("t", 0, 0, b"gone", None))
    [message] = source.poll(10, 0.1)
    assert message.value == b"" and message.metadata["key"] == "gone"
