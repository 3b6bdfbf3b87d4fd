"""Events on a Kafka topic: which ones, keyed how, with which headers.

``--events kafka://HOST/TOPIC`` publishes the stream's events as JSON, one record each
(``adcore.domain.events``: ``anomaly.detected``, ``drift.detected``, ``model.retrained``,
``model.refit_failed``, ``model.saved`` and the per-batch ``detection.completed``;
``?types=`` keeps some). Two choices make the topic
easy to consume:

- the ``adcore.event`` header holds the type, so a consumer can skip what it does not
  want without parsing JSON;
- the key is the anomalous *input record's* key for ``anomaly.detected`` (the alerts of one
  account land in one partition, in order, next to nothing else's), else the stream id (a
  stream's drift and retrain events stay in order).
"""

from __future__ import annotations

from typing import Any

from adcore import check_event_types

from adcore_kafka.metadata import key_bytes

EVENT_HEADER = "adcore.event"
STREAM_HEADER = "adcore.stream"


def parse_types(text: str | None) -> frozenset[str] | None:
    """``?types=anomaly.detected,drift.detected`` -> a set; ``None``/empty/``all``: every type."""
    if text is None or text.strip() in ("", "all"):
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    return check_event_types(names, who="kafka:// ?types=")


def event_record(event: Any) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The key and headers of one event's record."""
    key = key_bytes(getattr(event, "metadata", None)) if event.type == "anomaly.detected" else None
    stream = getattr(event, "stream", None)
    if key is None and stream:
        key = str(stream).encode("utf-8")
    headers = [(EVENT_HEADER, event.type.encode("utf-8"))]
    if stream:
        headers.append((STREAM_HEADER, str(stream).encode("utf-8")))
    return key, headers
