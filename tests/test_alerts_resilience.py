"""Alert sinks through a receiver's outage: faults injected into real receivers.

A real Alertmanager (``prometheus-alertmanager`` on loopback, stopped by PID and started again
on the same port) and a real webhook receiver (``http.server``, closed and reopened, or
scripted to answer 503 and 429 before 200, or 400) take notifications from one monitor that
lives through the whole outage. What must hold: ``record`` never waits for the receiver,
nothing queued is lost when it comes back (queried from the receiver itself), a full queue
drops its oldest, a refusal (4xx) is not retried and does not trip the breaker. The retry
and breaker settings are made small (``ADCORE_BREAKER_RESET_S=1``) so an outage takes
seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alertmanager_service import SECRET, Alertmanager, WebhookReceiver, free_port

from adcore.builtin.alerts.alertmanager import AlertmanagerMonitor
from adcore.builtin.alerts.monitor import AlertMonitor
from adcore.builtin.alerts.sender import target_of
from adcore.builtin.alerts.transport import DeliveryError, is_transient
from adcore.builtin.alerts.webhook import WebhookMonitor
from adcore.domain.events import AnomalyDetected
from adcore.services import resilience

# One record() with the receiver down: queueing only, microseconds; the bound leaves room for
# a loaded CI machine and is still a quarter of one request's timeout (ADCORE_ALERT_TIMEOUT=1).
RECORD_BUDGET_S = 0.25


@pytest.fixture(autouse=True)
def fast_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ADCORE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("ADCORE_RETRY_TIMEOUT_S", "3")
    monkeypatch.setenv("ADCORE_BREAKER_FAILURES", "2")
    monkeypatch.setenv("ADCORE_BREAKER_RESET_S", "1")
    monkeypatch.setenv("ADCORE_ALERT_TIMEOUT", "1")
    resilience.forget_dependencies()
    yield
    resilience.forget_dependencies()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    got = WebhookReceiver()
    got.start()
    try:
        yield got
    finally:
        got.stop()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    server = Alertmanager(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def anomaly(stream: str, offset: int = 0) -> AnomalyDetected:
    """One anomaly on its own stream: its own alert key, so its own notification."""
    return AnomalyDetected(
        stream=stream, offset=offset, line_number=offset + 1, score=5.0, threshold=2.0, model="m@1"
    )


def record_timed(monitor: AlertMonitor, events: list[AnomalyDetected]) -> float:
    """The slowest ``record`` of ``events``, in seconds (events spread over 0.05 s each)."""
    slowest = 0.0
    for event in events:
        started = time.monotonic()
        monitor.record(event)
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)  # let the sender fail, retry and open the breaker meanwhile
    return slowest


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time limit"
        time.sleep(0.05)


def dependency_of(monitor: AlertMonitor) -> resilience.Dependency:
    return resilience.dependency(monitor.name, target_of(monitor.url), is_transient, critical=False)


# ---------------------------------------------------------------------------- Alertmanager
@pytest.mark.service
def test_alertmanager_stopped_mid_run_loses_nothing_and_never_stalls_record(alertmanager):
    monitor = AlertmanagerMonitor(alertmanager.url, interval=0)
    for i in range(3):
        monitor.record(anomaly(f"before-{i}"))
    monitor.flush()
    assert {a["labels"]["stream"] for a in alertmanager.alerts()} == {"before-0", "before-1", "before-2"}

    alertmanager.stop()  # by PID, mid-run: the port refuses connections
    during = [anomaly(f"during-{i}", offset=i) for i in range(10)]
    assert record_timed(monitor, during) < RECORD_BUDGET_S
    with pytest.raises(DeliveryError, match=r"alertmanager.*Connection refused.*pending"):
        monitor.flush()  # the outage is reported once ...
    started = time.monotonic()
    monitor.flush()  # ... and flushing during it does not wait for the receiver
    assert time.monotonic() - started < 0.5
    dependency = dependency_of(monitor)
    assert dependency.stats.opened >= 1 and not dependency.critical
    assert monitor.pending == 10

    alertmanager.start()  # same port, same monitor: the sender resumes on its own
    eventually(lambda: monitor.pending == 0)
    streams = {a["labels"]["stream"] for a in alertmanager.alerts()}
    assert {e.stream for e in during} <= streams  # every notification of the outage arrived
    assert (monitor.stats.sent, monitor.stats.failed, monitor.stats.dropped) == (13, 0, 0)
    assert dependency.state == "closed"
    monitor.close()


@pytest.mark.service
def test_a_burst_during_an_alertmanager_outage_arrives_as_its_latest_count(alertmanager):
    monitor = AlertmanagerMonitor(alertmanager.url, interval=300)
    monitor.record(anomaly("s1", offset=0))
    monitor.flush()
    alertmanager.stop()
    assert record_timed(monitor, [anomaly("s1", offset=i) for i in range(1, 20)]) < RECORD_BUDGET_S
    alertmanager.start()
    monitor.close()  # the held-back count, sent through the retries once the receiver is back
    (alert,) = alertmanager.alerts()
    assert (alert["annotations"]["total"], alert["annotations"]["suppressed"]) == ("20", "19")
    assert (monitor.stats.sent, monitor.stats.failed) == (2, 0)


# ---------------------------------------------------------------------------- webhook
def test_webhook_receiver_down_and_back_gets_every_notification_once(receiver):
    monitor = WebhookMonitor(receiver.url, SECRET, interval=0)
    for i in range(3):
        monitor.record(anomaly(f"before-{i}"))
    monitor.flush()
    receiver.stop()
    assert record_timed(monitor, [anomaly(f"during-{i}") for i in range(10)]) < RECORD_BUDGET_S
    with pytest.raises(DeliveryError, match="pending, retried in the background"):
        monitor.flush()
    receiver.start()  # the same port
    eventually(lambda: monitor.pending == 0)
    streams = [b["labels"]["stream"] for b in receiver.bodies]
    assert streams == [f"before-{i}" for i in range(3)] + [f"during-{i}" for i in range(10)]  # in order
    assert len({b["delivery"] for b in receiver.bodies}) == 13
    assert receiver.refused == []
    assert (monitor.stats.sent, monitor.stats.failed, monitor.stats.dropped) == (13, 0, 0)
    monitor.close()


def test_503_and_429_are_retried_with_the_same_delivery_id_and_fresh_signatures(receiver):
    receiver.statuses = [503, 429, 503]  # then 200
    monitor = WebhookMonitor(receiver.url, SECRET, interval=0)
    monitor.record(anomaly("s1"))
    eventually(lambda: monitor.pending == 0)
    assert [status for status, _ in receiver.attempts] == [503, 429, 503, 200]
    assert len({payload["delivery"] for _, payload in receiver.attempts}) == 1  # receivers de-duplicate on it
    assert receiver.refused == []  # every attempt re-signed, and verified by the receiver
    assert len(receiver.bodies) == 1
    assert (monitor.stats.sent, monitor.stats.failed) == (1, 0)
    assert dependency_of(monitor).stats.retries >= 1
    monitor.close()


def test_a_blip_ridden_out_by_a_retry_is_waited_for_and_not_reported(receiver):
    receiver.statuses = [503]  # then 200
    monitor = WebhookMonitor(receiver.url, SECRET, interval=0)
    monitor.record(anomaly("s1"))
    monitor.flush()  # no error: the retry got it through within the flush
    assert [status for status, _ in receiver.attempts] == [503, 200]
    assert [b["labels"]["stream"] for b in receiver.bodies] == ["s1"]
    monitor.close()


def test_a_400_is_not_retried_and_does_not_trip_the_breaker(receiver):
    receiver.status = 400
    monitor = WebhookMonitor(receiver.url, SECRET, interval=0)
    for i in range(4):  # twice the breaker's failure count
        monitor.record(anomaly(f"s{i}"))
    with pytest.raises(DeliveryError, match=r"HTTP 400.*not retried"):
        monitor.flush()
    time.sleep(1.5)  # past the breaker's reset: a retry would have happened by now
    assert [status for status, _ in receiver.attempts] == [400] * 4
    assert (monitor.stats.sent, monitor.stats.failed, monitor.pending) == (0, 4, 0)
    dependency = dependency_of(monitor)
    assert (dependency.state, dependency.stats.failures, dependency.stats.retries) == ("closed", 0, 0)
    receiver.status = 200  # a refusal is per request: the next notification goes through
    monitor.record(anomaly("after"))
    monitor.flush()
    assert [b["labels"]["stream"] for b in receiver.bodies] == ["after"]
    monitor.close()


def test_a_full_queue_drops_its_oldest_never_blocks_and_sends_the_rest(receiver):
    monitor = WebhookMonitor(receiver.url, SECRET, interval=0, queue_size=5)
    receiver.stop()
    monitor.record(anomaly("s0"))
    with pytest.raises(DeliveryError, match="pending"):
        monitor.flush()  # the receiver is seen down: the breaker holds the sender for 1 s
    started = time.monotonic()
    for i in range(1, 8):
        monitor.record(anomaly(f"s{i}"))
    assert time.monotonic() - started < RECORD_BUDGET_S
    assert monitor.stats.dropped == 3 and monitor.pending == 5
    receiver.start()
    eventually(lambda: monitor.pending == 0)
    assert [b["labels"]["stream"] for b in receiver.bodies] == [f"s{i}" for i in range(3, 8)]
    assert (monitor.stats.sent, monitor.stats.dropped, monitor.stats.failed) == (5, 3, 0)
    monitor.close()


def test_a_hung_receiver_costs_record_nothing_and_flush_its_bound():
    with socket.socket() as hung:  # accepts connections (the kernel's backlog), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/hook"
        monitor = WebhookMonitor(url, SECRET, interval=0, flush_timeout=5)
        started = time.monotonic()
        assert record_timed(monitor, [anomaly(f"s{i}") for i in range(5)]) < RECORD_BUDGET_S
        with pytest.raises(DeliveryError, match="timed out"):
            monitor.flush()  # until the retries (2 attempts of 1 s) give up, not the 5 s
        assert time.monotonic() - started < 4.0
        monitor.flush_timeout = 0.2
        with pytest.raises(DeliveryError, match="not delivered at close"):
            monitor.close()
        assert monitor.stats.failed == 5 and monitor.stats.sent == 0


def test_queue_and_flush_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADCORE_ALERT_QUEUE", "7")
    monkeypatch.setenv("ADCORE_ALERT_FLUSH_TIMEOUT", "0.25")
    monitor = WebhookMonitor(f"http://127.0.0.1:{free_port()}/hook", SECRET)
    assert (monitor.queue_size, monitor.flush_timeout) == (7, 0.25)
    monkeypatch.setenv("ADCORE_ALERT_QUEUE", "0")
    with pytest.raises(Exception, match="ADCORE_ALERT_QUEUE must be at least 1"):
        WebhookMonitor(f"http://127.0.0.1:{free_port()}/hook", SECRET)


def test_an_open_alert_breaker_leaves_the_server_ready(tmp_path, monkeypatch):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from fastapi.testclient import TestClient
    from server_harness import training_rows

    from adcore.server.app import create_app
    from adcore.server.settings import ServerSettings

    url = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens: the pager is down
    monkeypatch.setenv("ADCORE_WEBHOOK_URL", url)
    monkeypatch.setenv("ADCORE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ADCORE_ALERT_FLUSH_TIMEOUT", "0.2")
    settings = ServerSettings(store=str(tmp_path / "m"), rate_limit=0, monitors=("webhook",))
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        body = client.post("/v1/detect", json={"data": training_rows(50, 2, seed=0)}).json()
        assert body["n_anomalies"] > 0 and time.monotonic() - started < 5

        def webhooks() -> list[tuple[str, str, str]]:  # made by the monitor's sender, not here
            return [(d.kind, d.target, d.state) for d in resilience.dependencies() if d.kind == "webhook"]

        eventually(lambda: webhooks() == [("webhook", target_of(url), "open")], 10)
        ready = client.get("/health/readiness")
        assert ready.status_code == 200, ready.text  # the API serves without its pager
