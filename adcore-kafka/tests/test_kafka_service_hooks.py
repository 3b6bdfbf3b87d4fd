"""The streaming service's optional hooks this plugin relies on, checked without a broker.

``Source.retain`` (drop records of revoked partitions), ``Source.dead_letter`` (a source's
own DLQ), ``Sink.write_malformed`` (the original bytes) and ``Sink.write_event`` (events
with their object): if the core stopped calling one, these fail before any Kafka test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adcore.domain.events import EventBus
from adcore.messaging import Message
from adcore.services.streaming import StreamConfig, StreamingService, StreamModel


class ListSource:
    def __init__(self, items: list[Any], drop: frozenset[bytes] = frozenset()) -> None:
        self.items, self.drop = list(items), drop
        self.dead_letter: Any = None
        self.retained: list[int] = []
        self.commits = 0

    def poll(self, max_records: int, timeout: float) -> list[Any] | None:
        if not self.items:
            return None
        out, self.items = self.items[:max_records], self.items[max_records:]
        return out

    def retain(self, items: list[Any]) -> list[Any]:
        self.retained.append(len(items))
        return [i for i in items if i.value not in self.drop]

    def commit(self) -> None:
        self.commits += 1

    def close(self) -> None:
        pass


class RecordingSink:
    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.malformed: list[Any] = []
        self.events: list[tuple[bytes, Any]] = []
        self.closed = False

    def write(self, value: bytes | str, metadata: Mapping[str, Any] | None = None) -> None:
        self.values.append(value if isinstance(value, bytes) else value.encode())

    def write_malformed(self, item: Any) -> None:
        self.malformed.append(item)

    def write_event(self, payload: bytes, event: Any) -> None:
        self.events.append((payload, event))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _service(source: ListSource, sink: RecordingSink, **kwargs: Any) -> StreamingService:
    from adcore.cli.run import build_detector

    detector = build_detector("core:hbos", None, 0.1, "contamination", None)
    config = StreamConfig(window=10, warmup=5, batch_size=8, max_delay_ms=10).validated()
    return StreamingService(source, sink, StreamModel.from_algorithm(detector), config, **kwargs)


def _msg(i: int, value: bytes | None = None) -> Message:
    raw = value if value is not None else b'{"id": %d, "x": %d.5}' % (i, i % 7)
    return Message(raw, {"topic": "t", "partition": 0, "offset": i, "key": f"k{i}"})


def test_the_service_asks_the_source_which_records_are_still_its_own() -> None:
    items = [_msg(i) for i in range(20)]
    source = ListSource(items, drop=frozenset({items[3].value, items[11].value}))
    sink = RecordingSink()
    _service(source, sink).run()
    assert source.retained and sum(source.retained) == 20
    assert len(sink.values) == 18 and b'"offset":3' not in b"".join(sink.values)


def test_a_sources_dead_letter_sink_gets_the_original_bytes() -> None:
    poison = b"\xff\xfe not json"
    source = ListSource([_msg(0), _msg(1, poison), _msg(2)])
    letters = RecordingSink()
    source.dead_letter = letters
    service = _service(source, RecordingSink())
    service.run()
    [item] = letters.malformed
    assert item.raw == poison and item.metadata["offset"] == 1 and "not JSON" in item.error
    service.close()
    assert letters.closed


def test_event_sinks_receive_the_event_object() -> None:
    events = RecordingSink()
    _service(ListSource([_msg(i) for i in range(12)]), RecordingSink(), events=EventBus(sinks=[events])).run()
    assert events.events
    for payload, event in events.events:
        assert event.type.encode() in payload
