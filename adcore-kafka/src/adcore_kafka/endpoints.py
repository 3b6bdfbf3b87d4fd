"""The factory the messaging port calls for ``kafka://`` URLs (imported only then).

``open_kafka(url, kind="source"|"sink")``: a source subscribes the group at once and a
sink connects its producer, so a wrong setting fails before the first record is read.
"""

from __future__ import annotations

from typing import Any

from adcore.errors import ParameterError

from adcore_kafka.config import KafkaURL, client_config, parse_url
from adcore_kafka.events import parse_types
from adcore_kafka.sink import KafkaSink
from adcore_kafka.source import KafkaSource

_SOURCE_ONLY = ("group", "dlq")
_SINK_ONLY = ("types",)


def open_kafka(url: str, *, kind: str = "source", **options: Any) -> KafkaSource | KafkaSink:
    """A :class:`KafkaSource` or :class:`KafkaSink` for ``url`` (see adcore_kafka.config)."""
    parsed = parse_url(url)
    if kind == "source":
        return open_source(parsed)
    if kind == "sink":
        return open_sink(parsed)
    raise ParameterError(f"kafka:// can be a source or a sink, not {kind!r}")


def _refuse(parsed: KafkaURL, names: tuple[str, ...], role: str) -> None:
    given = [n for n in names if n in parsed.options]
    if given:
        raise ParameterError(f"kafka:// option {', '.join(given)} has no meaning for a {role}")


def open_source(parsed: KafkaURL) -> KafkaSource:
    _refuse(parsed, _SINK_ONLY, "source")
    config = client_config(parsed, "consumer")
    if not config.get("group.id"):
        raise ParameterError(
            "a kafka source needs a consumer group: add ?group=NAME (processes with the same "
            "group share the topic's partitions)"
        )
    dead_letter = None
    if parsed.options.get("dlq"):
        dlq = KafkaURL(
            parsed.servers,
            (parsed.options["dlq"],),
            {"config": parsed.options.get("config", "")},
            parsed.settings,
        )
        dead_letter = KafkaSink(dlq.topic, client_config(dlq, "producer"))
    return KafkaSource(parsed.topics, config, dead_letter=dead_letter)


def open_sink(parsed: KafkaURL) -> KafkaSink:
    _refuse(parsed, _SOURCE_ONLY, "sink")
    return KafkaSink(
        parsed.topic, client_config(parsed, "producer"), types=parse_types(parsed.options.get("types"))
    )
