"""The dead-letter record: the poison record itself, plus why and where, in headers.

A record that cannot be scored (not JSON, a missing or non-numeric feature) goes to the
dead-letter topic as it arrived: the value is the original bytes and the key the original
key, so once the cause is fixed the records can be replayed into the input topic as they
are (``kafka-console-consumer | kafka-console-producer``, or any copy tool). Everything
else is in headers, the convention of Kafka Connect's dead-letter queues:

====================  ====================================================
``adcore.error``      what was wrong, e.g. ``missing feature 'amount'``
``adcore.topic``      the input topic
``adcore.partition``  the input partition (decimal text)
``adcore.offset``     the input offset (decimal text)
``adcore.line``       the record's number in this run (1-based), for a log
====================  ====================================================

The original bytes come from ``Malformed.raw``; a core that predates it gives the text the
service kept (invalid UTF-8 replaced), which is still enough to see what went wrong.
"""

from __future__ import annotations

from typing import Any

from adcore_kafka.metadata import OFFSET, PARTITION, TOPIC, key_bytes

ERROR, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, LINE = (
    "adcore.error",
    "adcore.topic",
    "adcore.partition",
    "adcore.offset",
    "adcore.line",
)


def dead_letter_record(item: Any) -> tuple[bytes, bytes | None, list[tuple[str, bytes]]]:
    """``(value, key, headers)`` for a malformed record.

    ``item`` is an ``adcore.services.streaming.records.Malformed``.
    """
    raw = getattr(item, "raw", None)
    if raw is None:
        raw = item.line
    value = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
    meta = item.metadata or {}
    headers = [(ERROR, str(item.error).encode("utf-8"))]
    for header, field in ((SOURCE_TOPIC, TOPIC), (SOURCE_PARTITION, PARTITION), (SOURCE_OFFSET, OFFSET)):
        if meta.get(field) is not None:
            headers.append((header, str(meta[field]).encode("utf-8")))
    headers.append((LINE, str(item.line_number).encode("ascii")))
    return value, key_bytes(meta), headers
