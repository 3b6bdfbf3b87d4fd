"""A Kafka topic as an adcore stream source, in a consumer group, at least once.

Delivery rests on one rule: an offset is committed only for records whose output the sink
has flushed, i.e. the broker acknowledged it. The streaming service polls a micro-batch,
scores it, calls ``sink.flush()`` (which waits for the acks) and only then ``commit()``;
so ``commit`` commits, synchronously, the next offset of every partition handed out since
the previous commit. A process killed at any moment loses nothing: what it had not
committed is read again by whoever owns the partition next (duplicates are bounded by one
batch, and every output names its input's topic/partition/offset, so they can be dropped).

Scale-out is Kafka's: every ``adcore stream`` with the same ``group`` gets a share of the
partitions. A rebalance can only happen inside ``poll`` (librdkafka runs the callbacks on
the polling thread), i.e. while the service is collecting a batch, never while it writes
one. So when partitions are revoked:

- what was processed is already committed; a commit that failed earlier (the group was
  rebalancing) is retried here, while this member still owns the partitions;
- records of the revoked partitions that were handed out but not yet scored are marked
  stale: :meth:`retain`, which the service calls on each batch before scoring it, drops
  them, and their offsets are never committed, so the new owner reads them and output
  order per partition is kept. If the same partition comes back (librdkafka's default,
  eager, protocol revokes everything on each rebalance), it restarts from the committed
  offset and the fresh copies are kept.

``close`` (SIGTERM, end of run) commits nothing new (the service has committed its last
batch) and leaves the group, so the partitions move at once instead of after
``session.timeout.ms``.
"""

from __future__ import annotations

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
}
_NO_OFFSET = KafkaError._NO_OFFSET  # nothing to commit: not an error

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
        self._consumer = make_consumer(config, self._errors)
        self._handed: list[Message] = []  # handed out since the last commit
        self._positions: dict[TP, int] = {}  # next offset per partition, of what was handed out
        self._flushed: dict[TP, int] = {}  # flushed downstream, commit not yet confirmed
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
        self._flushed.update(self._positions)
        self._positions = {}
        self._handed = []
        self._stale = {}  # the batch just committed was retained already (or holds no stale record)
        self._commit_flushed(None)

    def _commit_flushed(self, only: set[TP] | None) -> None:
        todo = {tp: o for tp, o in self._flushed.items() if only is None or tp in only}
        if not todo:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in todo.items()]
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and (error.code() in _RETRIABLE_COMMIT or error.retriable()):
                log.warning("kafka commit deferred (%s): will retry; records may be read twice", error.str())
                return
            if isinstance(error, KafkaError) and error.code() == _NO_OFFSET:
                result = offsets
            else:
                raise
        for tp in result or ():
            key = (tp.topic, tp.partition)
            if tp.error is None:
                if self._flushed.get(key) == todo.get(key):
                    del self._flushed[key]
            elif tp.error.code() not in _RETRIABLE_COMMIT:
                raise KafkaException(tp.error)

    # ------------------------------------------------------------- rebalance
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.debug("kafka group %s: assigned %s", self.group, _names(partitions))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        try:
            self._commit_flushed(revoked)  # while we still own them
        except KafkaException as exc:
            log.warning("kafka commit on revoke failed (%s): records may be read twice", exc)
        self._forget(revoked)
        log.debug("kafka group %s: revoked %s", self.group, _names(partitions))

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Ownership already gone (session timed out): commit nothing, forget everything."""
        self._forget({(tp.topic, tp.partition) for tp in partitions})
        log.warning("kafka group %s: lost %s; another member re-reads them", self.group, _names(partitions))

    def _forget(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._flushed.pop(tp, None)
            self._positions.pop(tp, None)
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
            try:
                self._commit_flushed(None)
            except KafkaException as exc:
                log.warning("kafka commit on close failed (%s): records may be read twice", exc)
            self._consumer.close()
        finally:
            if self.dead_letter is not None:
                self.dead_letter.close()


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
