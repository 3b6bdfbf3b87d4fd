"""Record metadata: where a Kafka record came from, as plain JSON, and back to a key.

The streaming service copies a source's metadata into every output record (``"_meta"``)
and hands it to the sink, so it must be JSON: ``{"topic", "partition", "offset", "key"}``.
A key is text when it is UTF-8 (nearly always); otherwise it travels as ``key_base64`` so
that the sink can still produce the output with the input's exact key bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

TOPIC, PARTITION, OFFSET, KEY, KEY_B64 = "topic", "partition", "offset", "key", "key_base64"


def record_metadata(topic: str, partition: int, offset: int, key: bytes | None) -> dict[str, Any]:
    """The ``_meta`` of one consumed record."""
    meta: dict[str, Any] = {TOPIC: topic, PARTITION: partition, OFFSET: offset, KEY: None}
    if key is not None:
        try:
            meta[KEY] = key.decode("utf-8")
        except UnicodeDecodeError:
            meta[KEY_B64] = base64.b64encode(key).decode("ascii")
    return meta


def key_bytes(metadata: Mapping[str, Any] | None) -> bytes | None:
    """The key to produce with: the input record's own bytes, or ``None`` for no key."""
    if not metadata:
        return None
    key = metadata.get(KEY)
    if key is not None:
        return key.encode("utf-8") if isinstance(key, str) else bytes(key)
    encoded = metadata.get(KEY_B64)
    return base64.b64decode(encoded) if encoded else None


def source_partition(metadata: Mapping[str, Any] | None) -> int | None:
    """The input partition, when the record came from Kafka."""
    if not metadata:
        return None
    value = metadata.get(PARTITION)
    return value if isinstance(value, int) else None
