"""The monitoring port's two new monitors: ``prometheus`` and ``jsonlog``, fed events."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from adcore.domain.events import AnomalyDetected, DetectionCompleted, DriftDetected, ModelRetrained
from adcore.plugins import PluginHost


@pytest.fixture
def prometheus():
    """The prometheus monitor's module (needs prometheus-client, from the server extra)."""
    pytest.importorskip("prometheus_client", reason="the server extra is not installed")
    from adcore.builtin import prometheus_monitor

    return prometheus_monitor


def retrained(stream: str = "s1", algorithm: str = "core:hbos") -> ModelRetrained:
    return ModelRetrained(
        stream=stream,
        reason="initial",
        offset=100,
        n_samples=100,
        algorithm=algorithm,
        threshold=1.5,
        previous_threshold=None,
        model=None,
        previous_model=None,
        saved=False,
        fit_ms=3.0,
    )


def completed(stream: str = "s1", scored: int = 50, anomalies: int = 4) -> DetectionCompleted:
    return DetectionCompleted(
        stream=stream,
        records=scored,
        scored=scored,
        warmup=0,
        anomalies=anomalies,
        malformed=0,
        first_offset=0,
        last_offset=scored - 1,
        model=None,
        threshold=1.5,
        duration_ms=12.5,
    )


def drift(stream: str = "s1") -> DriftDetected:
    return DriftDetected(
        stream=stream,
        detector="ks",
        on="scores",
        offset=180,
        statistic=0.4,
        threshold=0.2,
        p_value=1e-6,
        action="retrain",
    )


def sample(monitor, name: str, **labels) -> float | None:
    return monitor.registry.get_sample_value(name, labels)


def test_both_monitors_are_registered_lazily_by_the_core_plugin():
    host = PluginHost(autoload=False)
    monitors = host.registry("monitor")
    assert monitors["core:prometheus"].factory == "adcore.builtin.prometheus_monitor:PrometheusMonitor"
    assert monitors["core:prometheus"].needs == ("prometheus-client",)
    assert monitors["core:jsonlog"].factory == "adcore.builtin.jsonlog_monitor:JsonLogMonitor"


def test_prometheus_monitor_labels_stream_events_by_algorithm(prometheus):
    monitor = prometheus.PrometheusMonitor()
    monitor.record(retrained("s1", "core:hbos"))
    monitor.record(completed("s1", 50, 4))
    monitor.record(completed("s1", 30, 1))
    monitor.record(drift("s1"))
    monitor.record(completed("other-stream", 10, 0))  # no model.retrained seen: algorithm unknown
    monitor.record(
        AnomalyDetected(stream="s1", offset=3, line_number=4, score=2.0, threshold=1.5, model=None)
    )
    assert sample(monitor, "adcore_rows_scored_total", algorithm="core:hbos") == 80
    assert sample(monitor, "adcore_anomalies_total", algorithm="core:hbos") == 5
    assert sample(monitor, "adcore_rows_scored_total", algorithm="unknown") == 10
    assert (
        sample(monitor, "adcore_drift_events_total", algorithm="core:hbos", detector="ks", on="scores") == 1
    )
    assert sample(monitor, "adcore_model_retrains_total", algorithm="core:hbos", reason="initial") == 1
    assert sample(monitor, "adcore_events_total", type="anomaly.detected") == 1
    assert sample(monitor, "adcore_scoring_seconds_count", algorithm="core:hbos") == 2
    assert b"adcore_rows_scored_total" in monitor.exposition()


def test_two_prometheus_monitors_in_one_process_do_not_collide(prometheus):
    a, b = prometheus.PrometheusMonitor(), prometheus.PrometheusMonitor()
    a.scored("x", 3, 1)
    assert sample(a, "adcore_rows_scored_total", algorithm="x") == 3
    assert sample(b, "adcore_rows_scored_total", algorithm="x") is None


def test_prometheus_monitor_writes_a_textfile_and_serves_http(tmp_path, prometheus):
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "adcore.prom"
    monitor = prometheus.PrometheusMonitor(port=port, textfile=str(path))
    monitor.record(retrained())
    monitor.record(completed())
    monitor.flush()
    assert 'adcore_rows_scored_total{algorithm="core:hbos"} 50.0' in path.read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert b'adcore_anomalies_total{algorithm="core:hbos"} 4.0' in response.read()


def test_jsonlog_monitor_writes_structured_lines():
    from adcore.builtin.jsonlog_monitor import JsonLogMonitor

    out = io.StringIO()
    monitor = JsonLogMonitor(stream=out)
    monitor.record(completed())
    monitor.record(drift())
    monitor.record(
        AnomalyDetected(stream="s1", offset=3, line_number=4, score=float("nan"), threshold=1.5, model=None)
    )
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "detection.completed" and first["level"] == "info"
    assert first["message"] == "scored 50 of 50 records, 4 anomalous, in 12.5 ms"
    assert first["ts"].endswith("Z") and first["stream"] == "s1" and first["logger"] == "adcore.events"
    assert second["level"] == "warning" and second["message"] == "drift on scores by ks at offset 180"
    assert third["score"] is None  # NaN is not JSON


def test_jsonlog_monitor_appends_to_a_file(tmp_path, monkeypatch):
    from adcore.builtin.jsonlog_monitor import JsonLogMonitor

    path = tmp_path / "events.jsonl"
    monkeypatch.setenv("ADCORE_JSONLOG_PATH", str(path))
    monitor = JsonLogMonitor()
    monitor.record(completed())
    monitor.close()
    assert json.loads(path.read_text())["records"] == 50


def test_adcore_stream_feeds_the_new_monitors(tmp_path, prometheus):
    """The same monitors serve ``adcore stream --monitor``: events arrive as they are published."""
    import os

    log = tmp_path / "events.jsonl"
    prom = tmp_path / "adcore.prom"
    lines = "\n".join(json.dumps({"a": float(i % 7), "b": float(i % 5)}) for i in range(300)) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(ADCORE_JSONLOG_PATH=str(log), ADCORE_PROMETHEUS_TEXTFILE=str(prom), ADCORE_HOME=str(tmp_path))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "adcore.cli.main",
            "stream",
            "--algo",
            "core:hbos",
            "--window",
            "100",
            "--monitor",
            "jsonlog",
            "--monitor",
            "prometheus",
        ],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"model.retrained", "detection.completed"} <= kinds
    text = prom.read_text()
    assert 'adcore_rows_scored_total{algorithm="core:hbos"}' in text
    assert 'adcore_model_retrains_total{algorithm="core:hbos",reason="initial"} 1.0' in text
