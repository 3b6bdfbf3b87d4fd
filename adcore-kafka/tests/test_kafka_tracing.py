"""Trace context through Kafka: a record's ``traceparent`` header reaches the batch span, and the
scored records carry the batch span's context on to whoever consumes them (a real broker)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra is not installed")

from adcore.messaging import open_sink, open_source
from adcore.services import tracing
from adcore.services.streaming import StreamConfig, StreamingService, StreamModel
from kafka_broker import FAST_GROUP, Broker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.service

TRACE_A, TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
SPAN_A, SPAN_B = "00f067aa0ba902b7", "b7ad6b7169203331"


def _traceparent(trace_id: str, span_id: str) -> bytes:
    return f"00-{trace_id}-{span_id}-01".encode()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    try:
        yield exporter
    finally:
        tracing.configure(None)
        provider.shutdown()


def _run_stream(broker: Broker, src: str, dst: str, expected: int) -> list[Any]:
    from adcore.cli.run import build_detector

    detector = build_detector("core:hbos", None, 0.1, "contamination", None)
    config = StreamConfig(window=40, warmup=10, batch_size=25, max_delay_ms=50).validated()
    group = broker.unique("g")
    service = StreamingService(
        open_source(broker.url(src, f"group={group}&{FAST_GROUP}")),
        open_sink(broker.url(dst)),
        StreamModel.from_algorithm(detector),
        config,
    )
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        return broker.reader(dst).until(lambda rs: len(rs) >= expected)
    finally:
        service.stop()
        thread.join(30)
        service.close()


def test_one_upstream_trace_is_continued_and_passed_on(broker: Broker, spans: InMemorySpanExporter) -> None:
    src, dst = broker.create_topic("tr-in"), broker.create_topic("tr-out")
    producer = broker.producer()
    for i in range(40):
        value = json.dumps({"id": i, "x": float(i % 7)}).encode()
        producer.produce(src, value, None, headers=[("traceparent", _traceparent(TRACE_A, SPAN_A))])
    assert producer.flush(15) == 0
    out = _run_stream(broker, src, dst, 40)
    batches = [s for s in spans.get_finished_spans() if s.name == "adcore.stream.batch"]
    assert batches
    for batch in batches:
        assert format(batch.context.trace_id, "032x") == TRACE_A
        assert batch.parent is not None and format(batch.parent.span_id, "016x") == SPAN_A
    batch_ids = {format(b.context.span_id, "016x") for b in batches}
    for record in out:
        headers = dict(record.headers() or [])
        _, trace_id, span_id, _ = headers["traceparent"].decode().split("-")
        assert trace_id == TRACE_A and span_id in batch_ids  # the consumer's parent: our batch span


def test_records_from_many_traces_are_links(broker: Broker, spans: InMemorySpanExporter) -> None:
    src, dst = broker.create_topic("tr-in"), broker.create_topic("tr-out")
    producer = broker.producer()
    for i in range(30):
        parent = _traceparent(TRACE_A, SPAN_A) if i % 2 else _traceparent(TRACE_B, SPAN_B)
        value = json.dumps({"x": float(i % 5)}).encode()
        producer.produce(src, value, None, headers=[("traceparent", parent)])
    assert producer.flush(15) == 0
    _run_stream(broker, src, dst, 30)
    batches = [s for s in spans.get_finished_spans() if s.name == "adcore.stream.batch"]
    linked = [b for b in batches if b.links]
    assert linked, [(b.parent, b.links) for b in batches]
    for batch in linked:
        assert batch.parent is None  # a new trace of its own, linked to both producers
        assert {format(link.context.trace_id, "032x") for link in batch.links} == {TRACE_A, TRACE_B}
