"""Alert sinks (adcore.builtin.alerts): grouping, signed webhooks, and a real Alertmanager.

The grouping policy is pure and is stepped through its windows with a fake clock. Delivery is
tested against real receivers only: a webhook receiver (``http.server`` on a free loopback
port, in a thread) that checks every signature itself, and Debian's ``prometheus-alertmanager``
started on loopback by a fixture and stopped by PID (skipped, with the apt line, only when the
binary is missing; CI installs it: scripts/system-deps.sh). The end-to-end tests run the real
``adcore stream --monitor ...`` over a generated stream with a burst of anomalies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alertmanager_service import SECRET, Alertmanager, WebhookReceiver, free_port

from adcore.builtin.alerts import signing
from adcore.builtin.alerts.alertmanager import AlertmanagerMonitor, alerts_url
from adcore.builtin.alerts.grouping import GroupingPolicy
from adcore.builtin.alerts.transport import DeliveryError
from adcore.builtin.alerts.webhook import WebhookMonitor
from adcore.domain.events import AnomalyDetected, DetectionCompleted, DriftDetected, ModelRetrained
from adcore.errors import ParameterError
from adcore.plugins import PluginHost
from adcore.services import resilience


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def anomaly(stream: str = "s1", offset: int = 0, model: str | None = "m@1") -> AnomalyDetected:
    return AnomalyDetected(
        stream=stream, offset=offset, line_number=offset + 1, score=5.0 + offset, threshold=2.0, model=model
    )


def drift(stream: str = "s1", detector: str = "ks", offset: int = 100) -> DriftDetected:
    return DriftDetected(
        stream=stream, detector=detector, on="scores", offset=offset, statistic=0.4, threshold=0.2,
        p_value=1e-6,
    )  # fmt: skip


def retrained(stream: str = "s1", algorithm: str = "core:hbos") -> ModelRetrained:
    return ModelRetrained(
        stream=stream,
        reason="initial",
        offset=50,
        n_samples=50,
        algorithm=algorithm,
        threshold=2.0,
        previous_threshold=None,
        model="m@1",
        previous_model=None,
        saved=False,
        fit_ms=1.0,
    )


def completed(offset: int) -> DetectionCompleted:
    return DetectionCompleted(
        stream="s1", records=1, scored=1, warmup=0, anomalies=1, malformed=0, first_offset=offset,
        last_offset=offset, model="m@1", threshold=2.0, duration_ms=1.0,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_breakers() -> Iterator[None]:
    """Every test starts with closed breakers: one test's dead port must not open the next's."""
    resilience.forget_dependencies()
    yield
    resilience.forget_dependencies()


# ---------------------------------------------------------------------------- grouping
def test_a_burst_is_one_notification_then_one_count_per_interval():
    clock = FakeClock()
    policy = GroupingPolicy(60, clock=clock)
    first = policy.offer("k", "e0")
    assert [(n.event, n.events, n.suppressed, n.total) for n in first] == [("e0", 1, 0, 1)]
    for i in range(1, 100):
        clock.advance(0.1)
        assert policy.offer("k", f"e{i}") == []
    assert policy.due() == []  # the window is still open
    clock.advance(60)
    (summary,) = policy.due()
    assert (summary.event, summary.events, summary.suppressed, summary.total) == ("e99", 99, 99, 100)
    assert summary.first_event == "e0"
    assert policy.due() == []  # at most one notification per interval
    clock.advance(60)
    assert policy.due() == []  # a quiet interval ends the episode ...
    assert len(policy) == 0  # ... and its state
    (again,) = policy.offer("k", "later")
    assert (again.events, again.total) == (1, 1)  # a new episode is notified at once


def test_keys_are_independent_and_a_passed_window_carries_its_count():
    clock = FakeClock()
    policy = GroupingPolicy(10, clock=clock)
    assert len(policy.offer("a", 1)) == len(policy.offer("b", 1)) == 1
    assert policy.offer("a", 2) == policy.offer("a", 3) == []
    clock.advance(11)  # no due() call in between: the next event carries the held-back count
    (note,) = policy.offer("a", 4)
    assert (note.event, note.events, note.suppressed, note.total) == (4, 3, 2, 4)
    assert policy.offer("a", 5) == []  # and opened the next window


def test_close_sends_every_held_back_count_and_forgets_everything():
    clock = FakeClock()
    policy = GroupingPolicy(300, clock=clock)
    policy.offer("a", 1)
    policy.offer("a", 2)
    policy.offer("b", 1)  # nothing held back: nothing to send at close
    (note,) = policy.due(force=True)
    assert (note.key, note.events, note.suppressed, note.total) == ("a", 1, 1, 2)
    assert len(policy) == 0


def test_interval_zero_notifies_every_event_and_state_is_bounded():
    clock = FakeClock()
    every = GroupingPolicy(0, clock=clock)
    assert sum(len(every.offer("k", i)) for i in range(5)) == 5
    small = GroupingPolicy(60, clock=clock, max_keys=2)
    small.offer("a", 1)
    small.offer("a", 2)
    small.offer("b", 1)
    pushed_out = small.offer("c", 1)  # "a" is the least recently active, with one held back
    assert [(n.key, n.events) for n in pushed_out] == [("a", 1), ("c", 1)]
    assert len(small) == 2
    with pytest.raises(ValueError, match="interval"):
        GroupingPolicy(-1)


# ---------------------------------------------------------------------------- webhook receiver
@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free loopback port that checks each signature itself."""
    got = WebhookReceiver()
    got.start()
    try:
        yield got
    finally:
        got.stop()


def test_webhook_burst_is_one_signed_notification_plus_its_count(receiver):
    clock = FakeClock()
    monitor = WebhookMonitor(receiver.url, SECRET, interval=300, clock=clock)
    monitor.record(retrained())
    for i in range(200):
        monitor.record(anomaly(offset=i))
        monitor.record(completed(i))  # other types are ignored
    monitor.flush()
    assert len(receiver.bodies) == 1  # the first event, at once
    first = receiver.bodies[0]
    assert first["alertname"] == "AdcoreAnomaly"
    assert first["labels"] == {
        "alertname": "AdcoreAnomaly", "severity": "warning", "stream": "s1", "model": "m@1",
        "algorithm": "core:hbos",
    }  # fmt: skip
    assert (first["events"], first["suppressed"], first["event"]["offset"]) == (1, 0, 0)
    monitor.close()
    assert len(receiver.bodies) == 2  # the burst's count, at close
    last = receiver.bodies[1]
    assert (last["events"], last["suppressed"], last["total"]) == (199, 199, 200)
    assert last["event"]["offset"] == 199 and last["annotations"]["suppressed"] == "199"
    assert receiver.refused == []
    assert (monitor.stats.events, monitor.stats.sent, monitor.stats.suppressed) == (200, 2, 199)


def test_drift_is_keyed_by_detector_and_refits_keep_one_alert(receiver):
    clock = FakeClock()
    monitor = WebhookMonitor(receiver.url, SECRET, interval=300, clock=clock)
    monitor.record(retrained())  # drift events carry no model: the stream's is remembered from here
    monitor.record(drift(detector="ks"))
    monitor.record(drift(detector="ks", offset=200))  # same key: held back
    monitor.record(drift(detector="adwin"))
    monitor.record(anomaly(model="m@1+r1"))
    monitor.record(anomaly(model="m@1+r2"))  # an unsaved refit of the same stored model: same key
    monitor.flush()  # delivery is on the monitor's sender thread: wait for it
    kinds = [(b["alertname"], b["labels"].get("detector"), b["labels"]["model"]) for b in receiver.bodies]
    assert kinds == [
        ("AdcoreDrift", "ks", "m@1"),
        ("AdcoreDrift", "adwin", "m@1"),
        ("AdcoreAnomaly", None, "m@1"),
    ]
    assert receiver.bodies[0]["annotations"]["statistic"] == "0.4"


def test_signature_verification_refuses_tampering_stale_and_wrong_secret(receiver):
    monitor = WebhookMonitor(receiver.url, SECRET, interval=300)
    sent: list[tuple[bytes, dict]] = []

    def keep(url: str, body: bytes, headers, timeout: float) -> None:
        sent.append((body, dict(headers)))

    monitor.send = keep  # capture one request as the receiver would get it
    monitor.record(anomaly())
    monitor.flush()
    body, headers = sent[0]
    assert signing.verify(body, headers, SECRET)["event"]["offset"] == 0
    with pytest.raises(signing.SignatureError, match="signature"):
        signing.verify(body.replace(b'"offset":0', b'"offset":1'), headers, SECRET)
    with pytest.raises(signing.SignatureError, match="signature"):
        signing.verify(body, headers, "another secret")
    with pytest.raises(signing.SignatureError, match="old"):
        signing.verify(body, headers, SECRET, now=time.time() + 3600)
    forged = {**headers, "X-Adcore-Timestamp": str(int(time.time()) + 3600)}
    with pytest.raises(signing.SignatureError, match="timestamp"):
        signing.verify(body, forged, SECRET)


def test_a_refusing_receiver_is_reported_by_flush_counted_and_not_retried(receiver):
    receiver.status = 400  # a request the receiver will never take: retrying cannot help
    monitor = WebhookMonitor(receiver.url, SECRET, interval=0)
    for i in range(3):
        monitor.record(anomaly(offset=i))  # queued: record never raises
    with pytest.raises(DeliveryError, match=r"HTTP 400.*\(and 2 more refused\): not retried"):
        monitor.flush()
    assert (monitor.stats.sent, monitor.stats.failed, monitor.pending) == (0, 3, 0)
    assert [status for status, _ in receiver.attempts] == [400, 400, 400]  # one attempt each
    monitor.flush()  # reported once
    monitor.close()


def test_a_closed_port_never_blocks_record_and_flush_reports_it_once():
    closed = WebhookMonitor(f"http://127.0.0.1:{free_port()}/hook", SECRET, timeout=1, interval=0)
    started = time.monotonic()
    for i in range(20):
        closed.record(anomaly(offset=i))
    assert time.monotonic() - started < 0.5  # no request, no retry wait on the caller's thread
    with pytest.raises(DeliveryError, match=r"127\.0\.0\.1.*pending, retried in the background"):
        closed.flush()
    assert time.monotonic() - started < 3.5  # once the retries give up, not after ADCORE_ALERT_FLUSH_TIMEOUT
    closed.flush()  # once per outage
    assert closed.pending == 20 and closed.stats.sent == 0
    closed.flush_timeout = 0.2
    with pytest.raises(DeliveryError, match="20 alert notifications not delivered at close"):
        closed.close()
    assert (closed.stats.failed, closed.pending) == (20, 0)


def test_configuration_comes_from_the_environment_and_is_checked(monkeypatch):
    for name in ("ADCORE_WEBHOOK_URL", "ADCORE_WEBHOOK_SECRET", "ADCORE_ALERTMANAGER_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ParameterError, match="ADCORE_ALERTMANAGER_URL"):
        AlertmanagerMonitor()
    monkeypatch.setenv("ADCORE_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    with pytest.raises(ParameterError, match="ADCORE_WEBHOOK_SECRET"):
        WebhookMonitor()
    monkeypatch.setenv("ADCORE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ADCORE_ALERT_INTERVAL", "42")
    monkeypatch.setenv("ADCORE_ALERT_SEVERITY", "critical")
    hook = WebhookMonitor()
    assert (hook.url, hook.grouping.interval, hook.severity) == ("http://127.0.0.1:9/hook", 42.0, "critical")
    monkeypatch.setenv("ADCORE_ALERT_INTERVAL", "soon")
    with pytest.raises(ParameterError, match="ADCORE_ALERT_INTERVAL"):
        WebhookMonitor()
    monkeypatch.setenv("ADCORE_ALERTMANAGER_URL", "ftp://example")
    with pytest.raises(ParameterError, match="http"):
        AlertmanagerMonitor(interval=1)
    assert (
        alerts_url("http://am:9093/")
        == alerts_url("http://am:9093/api/v2/alerts")
        == ("http://am:9093/api/v2/alerts")
    )


def test_both_sinks_are_registered_lazily_by_the_core_plugin():
    monitors = PluginHost(autoload=False).registry("monitor")
    assert monitors["core:alertmanager"].factory == "adcore.builtin.alerts.alertmanager:AlertmanagerMonitor"
    assert monitors["core:webhook"].factory == "adcore.builtin.alerts.webhook:WebhookMonitor"


# ---------------------------------------------------------------------------- end to end
def burst_stream(n: int = 1500, burst: tuple[int, int] = (1000, 1200)) -> str:
    """Gaussian records with a block of far-away ones: a burst of a few hundred anomalies."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    X[burst[0] : burst[1]] += 50.0
    return "\n".join(json.dumps({"a": float(a), "b": float(b)}) for a, b in X) + "\n"


def run_stream(tmp_path: Path, monitor: str, records: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    clean.update(ADCORE_HOME=str(tmp_path), **env)
    args = ["stream", "--algo", "core:hbos", "--window", "500", "--retrain", "never", "--monitor", monitor]
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args],
        input=records, capture_output=True, text=True, env=clean, timeout=120,
    )  # fmt: skip


def test_adcore_stream_sends_a_burst_to_the_webhook_as_two_signed_requests(tmp_path, receiver):
    proc = run_stream(
        tmp_path, "webhook", burst_stream(), ADCORE_WEBHOOK_URL=receiver.url, ADCORE_WEBHOOK_SECRET=SECRET
    )
    assert proc.returncode == 0, proc.stderr
    anomalies = sum(json.loads(line)["label"] == 1 for line in proc.stdout.splitlines())
    assert anomalies > 100
    assert receiver.refused == []
    assert [b["alertname"] for b in receiver.bodies] == ["AdcoreAnomaly", "AdcoreAnomaly"]
    assert receiver.bodies[-1]["total"] == anomalies


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """Debian's ``prometheus-alertmanager`` on a free loopback port, no cluster, stopped by PID."""
    server = Alertmanager(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.service
def test_adcore_stream_burst_is_one_grouped_alert_in_alertmanager(tmp_path, alertmanager):
    proc = run_stream(
        tmp_path,
        "alertmanager",
        burst_stream(),
        ADCORE_ALERTMANAGER_URL=alertmanager.url,
        ADCORE_ALERT_GENERATOR_URL="http://adcore.example/streams",
    )
    assert proc.returncode == 0, proc.stderr
    anomalies = sum(json.loads(line)["label"] == 1 for line in proc.stdout.splitlines())
    assert anomalies > 100
    alerts = alertmanager.alerts()
    assert len(alerts) == 1, alerts  # one grouped alert, not hundreds
    (alert,) = alerts
    labels = alert["labels"]
    assert labels["alertname"] == "AdcoreAnomaly"
    assert labels["severity"] == "warning"
    assert labels["algorithm"] == "core:hbos"
    assert len(labels["stream"]) == 36  # the run's id
    assert set(labels) == {"alertname", "severity", "stream", "algorithm"}  # no model: none was named
    notes = alert["annotations"]
    assert int(notes["total"]) == anomalies  # the burst's count reached the one alert
    assert int(notes["suppressed"]) == anomalies - 1
    assert float(notes["score"]) > float(notes["threshold"])
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"] == "http://adcore.example/streams"


@pytest.mark.service
def test_drift_alert_carries_its_detector(tmp_path, alertmanager):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    clean.update(ADCORE_HOME=str(tmp_path), ADCORE_ALERTMANAGER_URL=alertmanager.url)
    proc = subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", "stream", "--algo", "core:hbos", "--window", "500",
         "--retrain", "never", "--drift", "page-hinkley", "--monitor", "alertmanager"],
        input=burst_stream(), capture_output=True, text=True, env=clean, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    by_name = {a["labels"]["alertname"]: a for a in alertmanager.alerts()}
    assert set(by_name) == {"AdcoreAnomaly", "AdcoreDrift"}
    drifted = by_name["AdcoreDrift"]
    assert drifted["labels"]["detector"] == "page-hinkley"
    assert {"statistic", "threshold", "offset", "on"} <= set(drifted["annotations"])


def test_a_closed_alert_endpoint_never_stops_the_stream(tmp_path):
    proc = run_stream(
        tmp_path, "alertmanager", burst_stream(), ADCORE_ALERTMANAGER_URL=f"http://127.0.0.1:{free_port()}"
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1500  # every record scored and written
    errors = [line for line in proc.stderr.splitlines() if "failed" in line]
    assert len(errors) == 1, proc.stderr  # reported once, further errors muted
    assert "AlertmanagerMonitor failed on flush: DeliveryError" in errors[0]
    assert "pending, retried in the background" in errors[0]


def test_adcore_serve_monitor_webhook_groups_a_requests_anomalies(tmp_path, monkeypatch, receiver):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from fastapi.testclient import TestClient
    from server_harness import training_rows

    from adcore.server.app import create_app
    from adcore.server.settings import ServerSettings

    monkeypatch.setenv("ADCORE_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ADCORE_WEBHOOK_SECRET", SECRET)
    settings = ServerSettings(store=str(tmp_path / "m"), rate_limit=0, monitors=("webhook",))
    anomalies = 0
    with TestClient(create_app(settings)) as client:
        for seed in range(3):
            body = client.post("/v1/detect", json={"data": training_rows(50, 2, seed=seed)}).json()
            anomalies += body["n_anomalies"]
    # Three requests' anomalies, one key (serve:detect): the first at once, the rest at shutdown.
    assert receiver.refused == []
    assert [b["labels"]["stream"] for b in receiver.bodies] == ["serve:detect", "serve:detect"]
    assert anomalies > 3
    assert receiver.bodies[-1]["total"] == anomalies
    assert receiver.bodies[-1]["suppressed"] == anomalies - 1
