"""OpenTelemetry tracing: the spans, their attributes and parents, propagation, and off by default.

In-process tests record spans with the SDK's in-memory exporter (``tracing.configure``); the end
to end test runs real ``adcore`` commands exporting OTLP/HTTP to a small receiver on loopback,
so the lazy, environment-driven configuration and the flush at exit are what is tested.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import adcore
from adcore.services import tracing

REPO = Path(__file__).resolve().parents[1]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ADCORE_"))}
    return {**env, **extra}


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


def _by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def _one(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = _by_name(exporter).get(name, [])
    assert len(found) == 1, (name, sorted(_by_name(exporter)))
    return found[0]


def _parent_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return child.parent is not None and child.parent.span_id == parent.context.span_id


X = np.random.default_rng(0).normal(size=(120, 3))


# --------------------------------------------------------------------- the switch
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "zipkin,otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"}, "otlp"),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, None),
        ({"OTEL_SERVICE_NAME": "svc"}, None),  # naming the service alone exports nothing
    ],
)
def test_only_the_standard_variables_turn_tracing_on(env, expected):
    assert tracing.requested_exporter(env) == expected


def test_off_by_default_records_nothing_and_imports_no_opentelemetry():
    code = (
        "import json, sys, numpy as np, adcore\n"
        "from adcore.services import tracing\n"
        "X = np.random.default_rng(0).normal(size=(50, 2))\n"
        "adcore.detect(X, algo='core:hbos', seed=0, explain=True)\n"
        "m = adcore.fit(X, algo='core:hbos', seed=0)\n"
        "m.score(np.zeros((3, 2)))\n"
        "assert tracing.span('x') is tracing.span('y')  # the one shared no-op\n"
        "print(json.dumps({'enabled': tracing.enabled(), 'carrier': tracing.inject(),\n"
        "  'otel': sorted(m for m in sys.modules if m.startswith('opentelemetry'))}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"enabled": False, "carrier": {}, "otel": []}


# --------------------------------------------------------------------- services
def test_fit_save_load_score_spans_with_attributes_and_parents(spans, tmp_path):
    store = str(tmp_path / "models")
    with tracing.span("test.root") as root:
        model = adcore.fit(X, algo="core:hbos", seed=0, name="payments", store=store)
        loaded = adcore.load_model("payments", store=store)
        loaded.score(X[:10])
    root_span = _one(spans, "test.root")
    fit, save, load, score = (
        _one(spans, n) for n in ("adcore.fit", "adcore.store.save", "adcore.store.load", "adcore.score")
    )
    assert root.get_span_context().trace_id == root_span.context.trace_id
    for child in (fit, save, load, score):
        assert _parent_of(child, root_span), child.name
        assert child.context.trace_id == root_span.context.trace_id
    assert dict(fit.attributes) == {"adcore.algorithm": "core:hbos", "adcore.rows": 120, "adcore.features": 3}
    assert save.attributes["adcore.model"] == model.record.ref == "payments@1"
    assert save.attributes["adcore.algorithm"] == "core:hbos"
    assert load.attributes["adcore.model"] == "payments@1"
    assert load.attributes["adcore.algorithm"] == "core:hbos"
    assert score.attributes["adcore.rows"] == 10 and score.attributes["adcore.features"] == 3
    assert score.attributes["adcore.model"] == "payments@1"


def test_explain_span_and_a_failure_is_recorded(spans, tmp_path):
    adcore.detect(X, algo="core:hbos", seed=0, explain=True)
    explain = _one(spans, "adcore.explain")
    fit = _one(spans, "adcore.fit")
    assert explain.attributes["adcore.features"] == 3 and explain.attributes["adcore.rows"] >= 1
    assert explain.parent is None and fit.parent is None  # adcore.detect opens no span of its own
    model = adcore.fit(X, algo="core:hbos", seed=0)
    with pytest.raises(adcore.errors.AdcoreError):
        model.score(np.zeros((4, 5)))  # five features for a three-feature model
    failed = [s for s in _by_name(spans)["adcore.score"] if not s.status.is_ok]
    assert failed and failed[0].events and failed[0].events[0].name == "exception"


def test_stream_batches_are_spans(spans, tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "in.jsonl"
    lines = (json.dumps({"a": float(a), "b": float(b)}) + "\n" for a, b in rng.normal(size=(250, 2)))
    src.write_text("".join(lines))
    out = tmp_path / "out.jsonl"
    with adcore.open_stream(str(src), str(out), algo="core:hbos", window=100, batch_size=100) as stream:
        stream.run()
    batches = _by_name(spans)["adcore.stream.batch"]
    assert len(batches) == 3
    assert {s.attributes["adcore.records"] for s in batches} == {100, 50}
    assert len({s.attributes["adcore.stream"] for s in batches}) == 1
    refits = [s for s in _by_name(spans)["adcore.fit"] if s.attributes.get("adcore.refit")]
    assert refits and all(any(_parent_of(f, b) for b in batches) for f in refits)


# ------------------------------------------------------------------------- HTTP
def _client(tmp_path):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from fastapi.testclient import TestClient

    from adcore.server.app import create_app
    from adcore.server.settings import ServerSettings

    settings = ServerSettings(store=str(tmp_path / "models"), rate_limit=0)
    return TestClient(create_app(settings))


def test_incoming_traceparent_is_the_parent_of_the_server_spans(spans, tmp_path):
    rows = X.tolist()
    with _client(tmp_path) as client:
        response = client.post(
            "/v1/detect",
            json={"algorithm": "core:hbos", "data": rows, "seed": 1},
            headers={"traceparent": TRACEPARENT},
        )
        assert response.status_code == 200, response.text
        missing = client.post("/v1/models/nope%401/score", json={"data": [[1.0, 2.0, 3.0]]})
        assert missing.status_code == 404, missing.text
    request = _one(spans, "POST /v1/detect")
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert request.parent is not None and format(request.parent.span_id, "016x") == PARENT_ID
    assert request.attributes["http.route"] == "/v1/detect"
    assert request.attributes["http.response.status_code"] == 200
    fit = _one(spans, "adcore.fit")
    assert _parent_of(fit, request) and fit.attributes["adcore.rows"] == len(rows)
    names = sorted(_by_name(spans))
    assert not [n for n in names if "nope" in n], names  # ids in paths never become span names
    assert "POST /v1/models/{ref}/score" in names, names  # named by the route's template


def test_a_job_continues_the_trace_of_the_request_that_queued_it(spans, tmp_path):
    with _client(tmp_path) as client:
        posted = client.post(
            "/v1/jobs",
            json={"kind": "detect", "data": X[:60].tolist(), "seed": 3},
            headers={"traceparent": TRACEPARENT},
        )
        assert posted.status_code == 202, posted.text
        assert "trace_context" not in posted.json()["request"]  # plumbing, not what the client sent
        deadline = time.monotonic() + 30
        while client.get(f"/v1/jobs/{posted.json()['id']}").json()["status"] not in ("finished", "failed"):
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.05)
        listed = client.get("/v1/jobs").json()["jobs"]
        assert listed and all("trace_context" not in job["request"] for job in listed)
    submit = _one(spans, "POST /v1/jobs")
    job = _one(spans, "adcore.job")
    assert format(job.context.trace_id, "032x") == TRACE_ID
    assert _parent_of(job, submit)
    assert job.attributes["adcore.kind"] == "detect" and job.attributes["adcore.job"] == posted.json()["id"]
    fit = _one(spans, "adcore.fit")
    assert _parent_of(fit, job)


def test_inject_and_extract_round_trip(spans):
    with tracing.span("test.sender"):
        carrier = tracing.inject()
        sent_trace = tracing.current_trace_id()
    assert carrier["traceparent"].split("-")[1] == sent_trace
    with tracing.span("test.receiver", context=carrier):
        assert tracing.current_trace_id() == sent_trace
    assert _parent_of(_one(spans, "test.receiver"), _one(spans, "test.sender"))


# ------------------------------------------------------------------ end to end
class _Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace endpoint: decodes each ExportTraceServiceRequest and keeps its spans."""

    received: list[tuple[str, str, dict]] = []  # (service.name, span name, attributes)

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    attrs = {a.key: a.value.string_value or a.value.int_value for a in s.attributes}
                    self.received.append((resource.get("service.name", ""), s.name, attrs))
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    _Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_adcore_commands_export_spans_over_otlp_http(receiver, tmp_path):
    url, received = receiver
    env = _clean_env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="adcore-e2e",
        ADCORE_HOME=str(tmp_path / "home"),
    )
    data = str(REPO / "examples" / "cardio.csv")
    store = str(tmp_path / "models")
    algo = ["--algo", "core:hbos", "--seed", "0"]
    commands = [
        ["run", *algo, "--input", data, "--output", str(tmp_path / "s.csv")],
        ["fit", *algo, "--input", data, "--model", "cardio", "--store", store],
        [
            "score",
            "--model",
            "cardio",
            "--store",
            store,
            "--input",
            data,
            "--output",
            str(tmp_path / "t.csv"),
        ],
    ]
    cli = [sys.executable, "-c", "from adcore.cli.main import main; main()"]
    for args in commands:
        proc = subprocess.run(
            [*cli, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
        )
        assert proc.returncode == 0, (args, proc.stderr)
    # Every command exited before this line: its spans arrived because the exit flushed them.
    names = [name for _, name, _ in received]
    assert names.count("adcore.fit") == 2, names
    assert {"adcore.store.save", "adcore.store.load", "adcore.score"} <= set(names), names
    assert {service for service, _, _ in received} == {"adcore-e2e"}
    score = next(attrs for _, name, attrs in received if name == "adcore.score")
    assert score["adcore.model"] == "cardio@1" and score["adcore.algorithm"] == "core:hbos"
    assert score["adcore.rows"] > 0


def test_a_served_request_exports_one_server_span_and_its_work(receiver, tmp_path):
    """A real ``adcore serve`` exporting over OTLP: a request is adcore's server span and its fit.

    The global tracer provider is set here (unlike the in-memory tests), which is what turns on
    FastAPI's own instrumentation in the FastAPI versions that have it: a second server span and
    operation spans per request, twice the export work (benchmarks/tracing_overhead.py).
    """
    from server_harness import running_server

    url, received = receiver
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not the default 5 s
    }
    with running_server(tmp_path / "srv", "--rate-limit", "0", env=env) as server, server.client() as client:
        for _ in range(3):
            response = client.post("/v1/detect", json={"algorithm": "core:hbos", "data": X.tolist()})
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 30
        while sum(name == "adcore.fit" for _, name, _ in received) < 3:
            assert time.monotonic() < deadline, [name for _, name, _ in received]
            time.sleep(0.05)
        time.sleep(0.3)  # a straggler span would arrive in the next export
    names = [name for _, name, _ in received if name != "GET /health/liveness"]
    assert sorted(names) == ["POST /v1/detect"] * 3 + ["adcore.fit"] * 3, names


def test_inside_a_dropped_trace_child_spans_are_the_shared_no_op():
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    try:
        with tracing.span("test.request"):
            dropped = tracing.current_trace_id()
            assert dropped is not None  # the trace exists, it is just not recorded
            assert tracing.span("test.child") is tracing._NOOP
            carrier = tracing.inject()  # downstream learns the trace and that it was dropped
            assert carrier["traceparent"].split("-")[1] == dropped
            assert int(carrier["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0  # the sampled flag: off
        # Work continuing a sampled caller's trace is recorded, dropped parent or not.
        with tracing.span("test.request"), tracing.span("test.job", context={"traceparent": TRACEPARENT}):
            assert tracing.current_trace_id() == TRACE_ID
    finally:
        tracing.configure(None)
        provider.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["test.job"]


def test_inside_a_recorded_trace_child_spans_are_recorded(spans):
    with tracing.span("test.request"), tracing.span("test.child"), tracing.span("test.grandchild"):
        pass
    assert _parent_of(_one(spans, "test.grandchild"), _one(spans, "test.child"))
    assert _parent_of(_one(spans, "test.child"), _one(spans, "test.request"))
