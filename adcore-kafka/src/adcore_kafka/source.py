"""A Kafka topic as an adcore stream source, in a consumer group, at least once.

Delivery rests on one rule: an offset is committed only for records whose output the sink
has flushed, i.e. the broker acknowledged it. The streaming service polls a micro-batch,
scores it, calls ``sink.flush()`` (which waits for the acks) and only then ``commit()``;
so ``commit`` commits the next offset of every partition handed out since the previous
commit. A process killed at any moment loses nothing: what it had not committed is read
again by whoever owns the partition next (duplicates are bounded by one batch, and every
output names its input's topic/partition/offset, so they can be dropped).

``commit`` is *asynchronous*: the output is already safe, so nothing waits for the
broker's answer. A synchronous commit blocks, silently and deaf to SIGTERM, while the
broker is away (for good if the request was in flight when it died: seen with tansu),
which is exactly when the stream must keep reporting and stay stoppable. librdkafka
reports each result through ``on_commit`` inside a later ``consume``; a partition's
offset is forgotten only once the broker confirmed it, so one refused because the broker
was down or the group rebalancing is sent again with the next commit (or on revoke, or on
close). Only an error that no retry can cure (authorization) stops the stream, at the
next ``commit``.

Scale-out is Kafka's: every ``adcore stream`` with the same ``group`` gets a share of the
partitions. A rebalance can only happen inside ``poll`` (librdkafka runs the callbacks on
the polling thread), i.e. while the service is collecting a batch, never while it writes
one. So when partitions are revoked:

- what was processed is committed, synchronously, while this member still owns the
  partitions (including a commit that failed earlier or has not been answered yet);
- records of the revoked partitions that were handed out but not yet scored are marked
  stale: :meth:`retain`, which the service calls on each batch before scoring it, drops
  them, and their offsets are never committed, so the new owner reads them and output
  order per partition is kept. If the same partition comes back (librdkafka's default,
  eager, protocol revokes everything on each rebalance), it restarts from the committed
  offset and the fresh copies are kept.

``close`` (SIGTERM, end of run) sends what is not confirmed yet (the service has
committed its last batch), lets librdkafka finish it, and leaves the group, so the
partitions move at once instead of after ``session.timeout.ms``; while the broker is away
it gives up after ``CLOSE_TIMEOUT_S`` (see :meth:`KafkaSource._close_consumer`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from adcore.messaging import Item, Message
from adcore.services import tracing
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from adcore_kafka.clients import ErrorTracker, log, make_consumer
from adcore_kafka.metadata import KEY, OFFSET, PARTITION, TOPIC, record_metadata

# Commit errors that mean "the group is rebalancing or moved on": the output is safe, the
# offsets are retried at the next commit or on revoke, at worst a batch is read twice.
_RETRIABLE_COMMIT = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD,
    KafkaError._ALL_BROKERS_DOWN,
}
_NO_OFFSET = KafkaError._NO_OFFSET  # nothing to commit: not an error
#: The longest ``close`` waits for the broker (leave the group, finish the last commit):
#: within Kubernetes' default 30 s grace period, above a healthy broker's few milliseconds.
CLOSE_TIMEOUT_S = 10.0

TP = tuple[str, int]
#: Trace contexts kept between two batches: the batch span links to at most this many anyway.
_MAX_TRACE_CONTEXTS = 1024
_TRACE_HEADERS = ("traceparent", "tracestate")


def _keep_trace_context(msg: Any, into: list[dict[str, str]]) -> None:
    """Append the record's W3C trace headers to ``into``, if it has a ``traceparent``."""
    headers = msg.headers()
    if not headers or len(into) >= _MAX_TRACE_CONTEXTS:
        return
    carrier = {k: v.decode("latin-1") for k, v in headers if k in _TRACE_HEADERS and isinstance(v, bytes)}
    if "traceparent" in carrier:
        into.append(carrier)


class KafkaSource:
    """Consumes ``topics`` as group ``config["group.id"]``; see the module docstring.

    ``dead_letter`` is the sink for malformed records when the URL named a ``dlq`` topic;
    the streaming service uses it unless ``--dead-letter`` gave another.
    """

    def __init__(self, topics: tuple[str, ...], config: dict[str, Any], *, dead_letter: Any = None) -> None:
        self.topics = topics
        self.group = str(config.get("group.id"))
        self.dead_letter = dead_letter
        self._errors = ErrorTracker(f"consumer (group {self.group})")
        self._consumer = make_consumer({**config, "on_commit": self._on_commit}, self._errors)
        self._handed: list[Message] = []  # handed out since the last commit
        self._positions: dict[TP, int] = {}  # next offset per partition, of what was handed out
        self._flushed: dict[TP, int] = {}  # flushed downstream, commit not yet confirmed
        self._in_flight: dict[TP, int] = {}  # sent asynchronously, not answered yet
        self._commit_error: KafkaError | None = None  # one no retry can cure: raised by commit()
        self._deferred = False  # a commit was refused and not yet confirmed since (log once)
        self._stale: dict[int, Message] = {}  # id -> handed-out record of a revoked partition
        self._reported: set[int] = set()
        self._closed = False
        # W3C trace context of the records polled since the service last took them (tracing on only).
        self._traced = tracing.enabled()
        self._trace_contexts: list[dict[str, str]] = []
        self._consumer.subscribe(
            list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    # -------------------------------------------------------------- reading
    def poll(self, max_records: int, timeout: float) -> list[Item]:
        """Up to ``max_records`` records as :class:`adcore.messaging.Message` (a Kafka stream never ends)."""
        self._errors.raise_fatal()
        messages = self._consumer.consume(num_messages=max(1, max_records), timeout=max(timeout, 0.0))
        out: list[Message] = []
        append = out.append
        positions = self._positions
        traced = self._traced
        for msg in messages:  # the hot loop: one Message per record, no call that can be avoided
            if msg.error() is not None:
                self._on_error(msg.error())
                continue
            topic, partition, offset, key, value = (
                msg.topic(),
                msg.partition(),
                msg.offset(),
                msg.key(),
                msg.value(),
            )
            if key is None:
                meta = {TOPIC: topic, PARTITION: partition, OFFSET: offset, KEY: None}
            elif key.isascii():
                meta = {TOPIC: topic, PARTITION: partition, OFFSET: offset, KEY: key.decode("ascii")}
            else:
                meta = record_metadata(topic, partition, offset, key)
            # A tombstone (null value) reads as a blank line: skipped, never a crash, offset committed.
            append(Message(b"" if value is None else value, meta))
            if traced:
                _keep_trace_context(msg, self._trace_contexts)
            positions[(topic, partition)] = offset + 1
        self._handed.extend(out)
        return out  # type: ignore[return-value]

    def take_trace_contexts(self) -> list[dict[str, str]]:
        """The ``traceparent`` (and ``tracestate``) of the records polled since the last call.

        The streaming service's ``adcore.stream.batch`` span continues or links to them
        (see docs/tracing.md). Empty when tracing is off: the headers are then never read.
        """
        taken, self._trace_contexts = self._trace_contexts, []
        return taken

    def retain(self, items: list[Item]) -> list[Item]:
        """``items`` without the records of partitions revoked since they were polled."""
        if not self._stale:
            return items
        stale, self._stale = self._stale, {}
        return [item for item in items if id(item) not in stale]

    # ------------------------------------------------------------ committing
    def commit(self) -> None:
        """Commit the next offset of every partition handed out: their output is flushed."""
        if self._commit_error is not None:
            raise KafkaException(self._commit_error)
        self._flushed.update(self._positions)
        self._positions = {}
        self._handed = []
        self._stale = {}  # the batch just committed was retained already (or holds no stale record)
        self._commit_flushed(None, asynchronous=True)

    def _commit_flushed(self, only: set[TP] | None, *, asynchronous: bool) -> None:
        """Commit the flushed offsets (of ``only``); the answer comes back through :meth:`_on_commit`
        (asynchronous) or here (synchronous: on revoke, while the partitions are still ours)."""
        todo = {
            tp: o
            for tp, o in self._flushed.items()
            if (only is None or tp in only) and (not asynchronous or self._in_flight.get(tp) != o)
        }
        if not todo:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in todo.items()]
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == _NO_OFFSET:
                result = offsets
            elif isinstance(error, KafkaError) and self._retriable(error):
                self._defer(error)
                return
            else:
                raise
        if asynchronous:
            self._in_flight.update(todo)
        else:
            self._confirmed(result or [])

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to an asynchronous commit (called inside ``consume``)."""
        answered = {(tp.topic, tp.partition): tp.offset for tp in partitions or ()}
        for key, offset in answered.items():
            if self._in_flight.get(key) == offset:
                del self._in_flight[key]
        if not answered:  # a whole request failed and names nothing: send everything again
            self._in_flight.clear()
        if error is None or error.code() == _NO_OFFSET:
            # The group coordinator answered: proof the broker is back (records handed out
            # may have been fetched before it went away, so they prove nothing).
            self._errors.recovered()
            self._confirmed(partitions)
        elif self._retriable(error):
            self._defer(error)
        else:
            self._commit_error = self._commit_error or error

    def _confirmed(self, partitions: list[TopicPartition]) -> None:
        """Forget the offsets the broker stored; keep the refused ones for the next commit."""
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if tp.error is None:
                if self._flushed.get(key) == tp.offset:
                    del self._flushed[key]
            elif self._retriable(tp.error):
                self._defer(tp.error)
            else:
                self._commit_error = self._commit_error or tp.error
        if self._deferred and not self._flushed:
            self._deferred = False
            log.warning("kafka group %s: commits confirmed again", self.group)

    @staticmethod
    def _retriable(error: KafkaError) -> bool:
        return error.code() in _RETRIABLE_COMMIT or error.retriable()

    def _defer(self, error: KafkaError) -> None:
        if not self._deferred:
            self._deferred = True
            log.warning(
                "kafka commit deferred (%s): sent again with the next one; records may be read twice",
                error.str(),
            )

    # ------------------------------------------------------------- rebalance
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.debug("kafka group %s: assigned %s", self.group, _names(partitions))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        try:
            self._commit_flushed(revoked, asynchronous=False)  # while we still own them
        except KafkaException as exc:
            log.warning("kafka commit on revoke failed (%s): records may be read twice", exc)
        self._forget(revoked)
        log.debug("kafka group %s: revoked %s", self.group, _names(partitions))

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Ownership already gone (session timed out): commit nothing, forget everything."""
        self._forget({(tp.topic, tp.partition) for tp in partitions})
        log.warning(
            "kafka group %s: lost %s (session timed out); their uncommitted records are read again",
            self.group,
            _names(partitions),
        )

    def _forget(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._flushed.pop(tp, None)
            self._positions.pop(tp, None)
            self._in_flight.pop(tp, None)
        kept: list[Message] = []
        for item in self._handed:
            meta: Mapping[str, Any] = item.metadata or {}
            if (meta.get(TOPIC), meta.get(PARTITION)) in revoked:
                self._stale[id(item)] = item
            else:
                kept.append(item)
        self._handed = kept

    # -------------------------------------------------------------- the rest
    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        if error.code() not in self._reported:
            self._reported.add(error.code())
            log.warning("kafka consumer (group %s): %s", self.group, error.str())

    def close(self) -> None:
        """Retry any deferred commit, leave the group; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            try:  # asynchronous: the consumer's close() waits for it
                self._commit_flushed(None, asynchronous=True)
            except KafkaException as exc:
                log.warning("kafka commit on close failed (%s): records may be read twice", exc)
            self._close_consumer()
        finally:
            if self.dead_letter is not None:
                self.dead_letter.close()

    def _close_consumer(self) -> None:
        """``Consumer.close()``, given up after ``CLOSE_TIMEOUT_S``.

        librdkafka's close waits for every commit in flight, and a commit whose broker went
        away mid-request waits for the coordinator for ever (librdkafka issue 3740): SIGTERM
        during an outage would never end the process. Past the bound the process exits
        without leaving the group; nothing is lost (the offsets in doubt are read again).
        """
        failure: list[BaseException] = []

        def close() -> None:
            try:
                self._consumer.close()
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)

        closer = threading.Thread(target=close, name="adcore-kafka-close", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            log.warning(
                "kafka group %s: no answer from the broker within %.0f s; exiting without leaving the "
                "group (its partitions move after session.timeout.ms; uncommitted records are read again)",
                self.group,
                CLOSE_TIMEOUT_S,
            )
        elif failure:
            raise failure[0]


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
