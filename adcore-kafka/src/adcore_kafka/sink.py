"""A Kafka topic as an adcore stream sink: scored records, events or dead letters.

One producer per sink, idempotent with ``acks=all``: a record is acknowledged only once
every in-sync replica has it, and librdkafka's retries can neither duplicate nor reorder
it within a partition. ``write`` only queues; :meth:`KafkaSink.flush`, which the service
calls once per micro-batch *before* the source commits its offsets, waits until the broker
has acknowledged every queued record and raises :class:`KafkaDeliveryError` if any was
refused, so a batch whose output is not safe is never committed.

Where a record goes: an output keeps its input's key (``_meta.key``), so the default
partitioner puts it where the input's key would go and a key's records stay in order. A
record without a key goes to the partition numbered like its input partition (modulo the
output topic's partition count), so per-partition order holds for keyless streams too.

The service picks the method for each role, so one class serves all three:
``write``/``write_many`` for scored records, ``write_event`` for ``--events`` (see
:mod:`adcore_kafka.events`), ``write_malformed`` for dead letters (see :mod:`adcore_kafka.dlq`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adcore.errors import AdcoreError
from adcore.services import tracing
from confluent_kafka import KafkaError, KafkaException

from adcore_kafka.clients import ErrorTracker, make_producer
from adcore_kafka.dlq import dead_letter_record
from adcore_kafka.events import event_record
from adcore_kafka.metadata import KEY, key_bytes, source_partition

_ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: let the partitioner choose
_METADATA_TIMEOUT = 10.0


def _trace_headers() -> list[tuple[str, bytes]] | None:
    """The current span's W3C context as Kafka headers, so consumers continue the trace; None when off."""
    carrier = tracing.inject()
    return [(k, v.encode("latin-1")) for k, v in carrier.items()] or None


class KafkaDeliveryError(AdcoreError):
    """The broker did not acknowledge some records; their input offsets stay uncommitted."""


class KafkaSink:
    """Produces to ``topic``; see the module docstring.

    ``types`` limits :meth:`write_event` to some event types (``None``: all).
    """

    def __init__(self, topic: str, config: dict[str, Any], *, types: frozenset[str] | None = None) -> None:
        self.topic = topic
        self.types = types
        self._errors = ErrorTracker(f"producer ({topic})")
        self._failures: list[KafkaError] = []
        self._producer = make_producer(config, self._errors, self._on_delivery)
        self._partitions: int | None = None
        self._queued = 0  # records queued since the last flush (delivering them proves the broker up)
        self._closed = False

    # ------------------------------------------------------------- writing
    def write(self, value: bytes | str, metadata: Mapping[str, Any] | None = None) -> None:
        """Queue one record with its input's key (see the module docstring)."""
        key = key_bytes(metadata)
        self._produce(value, key, self._partition_for(metadata, key), _trace_headers())

    def write_many(
        self, values: Sequence[bytes], metadata: Sequence[Mapping[str, Any] | None] | None = None
    ) -> None:
        """Queue a batch (the service's fast path: one call per micro-batch)."""
        produce, topic = self._producer.produce, self.topic
        if metadata is None:
            metadata = [None] * len(values)
        headers = _trace_headers()  # the batch span's context, the same for the whole batch
        self._queued += len(values)
        for value, meta in zip(values, metadata, strict=True):
            key = meta.get(KEY) if meta else None  # the common case inline: a text key
            if type(key) is str:
                key, partition = key.encode("utf-8"), _ANY_PARTITION
            else:
                key = key_bytes(meta)
                partition = self._partition_for(meta, key)
            try:
                if headers is None:
                    produce(topic, value, key, partition)
                else:
                    produce(topic, value, key, partition, headers=headers)
            except (BufferError, KafkaException):
                self._produce(value, key, partition, headers)  # waits for room, or names the refusal

    def write_event(self, payload: bytes, event: Any) -> None:
        """Queue one event (``payload`` is its JSON), keyed and labelled by :mod:`adcore_kafka.events`."""
        if self.types is not None and event.type not in self.types:
            return
        key, headers = event_record(event)
        self._produce(payload, key, _ANY_PARTITION, headers + (_trace_headers() or []))

    def write_malformed(self, item: Any) -> None:
        """Queue a dead letter: the original record, the error and its origin in headers."""
        value, key, headers = dead_letter_record(item)
        self._produce(value, key, self._partition_for(item.metadata, key), headers)

    def _produce(
        self,
        value: bytes | str,
        key: bytes | None,
        partition: int,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self._queued += 1
        while True:
            try:
                self._producer.produce(self.topic, value, key, partition, headers=headers)
                return
            except BufferError:  # librdkafka's queue is full: let it drain, then retry
                self._producer.poll(0.05)
                self._errors.raise_fatal()
            except KafkaException as exc:  # refused before sending, e.g. larger than message.max.bytes
                error = exc.args[0] if exc.args else exc
                text = error.str() if isinstance(error, KafkaError) else str(error)
                raise KafkaDeliveryError(
                    f"kafka topic {self.topic!r}: a record was refused ({text})"
                ) from exc

    def _partition_for(self, metadata: Mapping[str, Any] | None, key: bytes | None) -> int:
        if key is not None:
            return _ANY_PARTITION
        partition = source_partition(metadata)
        if partition is None:
            return _ANY_PARTITION
        count = self._partition_count()
        return partition % count if count else _ANY_PARTITION

    def _partition_count(self) -> int:
        """The output topic's partition count, asked once (0 when the topic is unknown)."""
        if self._partitions is None:
            try:
                meta = self._producer.list_topics(self.topic, timeout=_METADATA_TIMEOUT)
                topic = meta.topics.get(self.topic)
                ok = topic is not None and topic.error is None
                self._partitions = len(topic.partitions) if ok else 0
            except KafkaException:
                self._partitions = 0
        return self._partitions

    # ------------------------------------------------------------ delivery
    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:  # only failures are reported (delivery.report.only.error)
            self._failures.append(error)

    def flush(self) -> None:
        """Wait until the broker acknowledged everything queued; raise if anything was refused.

        Waits as long as librdkafka keeps retrying (``message.timeout.ms``, 5 min by default):
        returning early would let the source commit offsets whose output may still be lost.
        """
        queued, self._queued = self._queued, 0
        while self._producer.flush(1.0):
            self._errors.raise_fatal()
        self._errors.raise_fatal()
        if self._failures:
            failures, self._failures = self._failures, []
            hint = ""
            if failures[0].code() == KafkaError._MSG_TIMED_OUT:
                hint = " after message.timeout.ms (set producer.message.timeout.ms=0 to wait for ever)"
            raise KafkaDeliveryError(
                f"kafka topic {self.topic!r}: {len(failures)} record(s) not delivered "
                f"({failures[0].str()}){hint}; their input offsets were not committed"
            )
        if queued:
            self._errors.recovered()

    def close(self) -> None:
        """Deliver what is queued (raising like :meth:`flush`); idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush()
