"""The server publishes through the event bus a stream uses: plugins' subscribers see its events.

A real plugin distribution on a temporary path registers two subscribers (one appends every
event to a file, one always raises) and a real ``adcore serve`` loads it; requests then show
up as events in that file, after their responses, and the broken subscriber costs nothing
but one line in the server log.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from server_harness import REPO, running_server, training_rows

AUDIT_PLUGIN = """
import json
import adcore

PATH = {path!r}

def _append(event):
    with open(PATH, "a") as f:
        f.write(json.dumps(event.to_dict()) + "\\n")

def _broken(event):
    raise RuntimeError("the pager is down")

@adcore.hookimpl
def register_event_subscribers(register):
    register("audit", _append)
    register("pager", _broken, types=("anomaly.detected",))
"""


def _wait_for(path: Path, predicate, timeout: float = 20.0) -> list[dict]:
    """The events in ``path`` once ``predicate(events)`` holds (delivery is off the request path)."""
    deadline = time.monotonic() + timeout
    events: list[dict] = []
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            # Only whole lines: the subscriber may be writing the last one as we read.
            events = [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]
            if predicate(events):
                return events
        time.sleep(0.05)
    raise AssertionError(f"events never matched; got {[e['type'] for e in events]}")


@pytest.mark.service
def test_subscribers_see_the_servers_detections_scores_fits_and_drift(plugin_site, tmp_path: Path):
    received = tmp_path / "received.jsonl"
    plugin_site.add(
        "adcore-audit", {"audit": "adcore_audit"}, {"adcore_audit": AUDIT_PLUGIN.format(path=str(received))}
    )
    env = {
        "PYTHONPATH": os.pathsep.join([str(plugin_site.root), str(REPO)]),
        "ADCORE_DISABLE_PLUGIN_AUTOLOAD": "0",
        "ADCORE_PLUGINS": "audit",
    }
    rows = training_rows(200)
    with running_server(tmp_path / "srv", env=env) as server, server.client() as client:
        detect = client.post("/v1/detect", json={"algorithm": "core:hbos", "data": rows, "seed": 3})
        assert detect.status_code == 200, detect.text
        flagged = [i for i, label in enumerate(detect.json()["labels"]) if label == 1]
        events = _wait_for(received, lambda es: any(e["type"] == "detection.completed" for e in es))
        completed = [e for e in events if e["type"] == "detection.completed"]
        assert completed[0]["stream"] == "serve:detect" and completed[0]["records"] == 200
        anomalies = [e for e in events if e["type"] == "anomaly.detected"]
        assert [e["offset"] for e in anomalies] == flagged  # one per anomalous row, in order
        assert [e["type"] for e in events][-1] == "detection.completed"  # after its anomalies

        fit = client.post(
            "/v1/models", json={"name": "payments", "algorithm": "core:hbos", "data": rows, "seed": 9}
        )
        assert fit.status_code == 201, fit.text
        saved = _wait_for(received, lambda es: any(e["type"] == "model.saved" for e in es))
        (event,) = [e for e in saved if e["type"] == "model.saved"]
        assert (event["model"], event["seed"], event["n_samples"]) == ("payments@1", 9, 200)
        assert event["stream"] == "serve:fit" and event["sha256"] == fit.json()["sha256"]

        for shift in (0.0, 6.0, 6.0, 6.0):  # scores far from the training scores: drift
            scored = client.post("/v1/models/payments/score", json={"data": training_rows(200, shift=shift)})
            assert scored.status_code == 200, scored.text
        events = _wait_for(received, lambda es: any(e["type"] == "drift.detected" for e in es))
        drift = next(e for e in events if e["type"] == "drift.detected")
        assert drift["stream"] == "serve:payments@1"
        assert {e["stream"] for e in events if e["type"] == "detection.completed"} >= {"serve:payments@1"}
        assert client.get("/health/liveness").status_code == 200  # still serving, on the same connection
    log = server.output()
    assert (
        log.count("subscriber audit:pager failed on anomaly.detected: RuntimeError: the pager is down") == 1
    )


def test_the_publisher_delivers_in_order_off_the_caller_and_drops_rather_than_grow(caplog):
    import logging
    import threading

    from adcore.domain.events import DriftDetected, EventBus, Subscription
    from adcore.server.publisher import EventPublisher

    gate = threading.Event()
    got: list[int] = []

    def slow(event):
        gate.wait(10)  # a pager that takes its time
        got.append(event.offset)

    publisher = EventPublisher(EventBus(subscribers=[Subscription("slow", slow)]), max_queued=2)
    events = [
        DriftDetected(detector="ks", on="scores", offset=i, statistic=1.0, threshold=0.5) for i in range(5)
    ]
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="adcore.server"):
        publisher.publish([events[0]])
        deadline = time.monotonic() + 10
        while publisher._queue.qsize() and time.monotonic() < deadline:  # the thread took the first
            time.sleep(0.01)
        for event in events[1:]:
            publisher.publish([event])
    assert time.monotonic() - started < 5  # never waited for the subscriber
    assert publisher.dropped == 2 and "events: 1 dropped so far" in caplog.text
    gate.set()
    publisher.close()
    assert got == [0, 1, 2]  # in order; what was queued at shutdown was delivered


def test_nobody_listening_means_no_thread_and_no_events():
    from adcore.domain.events import EventBus
    from adcore.server.publisher import EventPublisher

    publisher = EventPublisher(EventBus())
    assert not publisher.listening and publisher._thread is None
    assert not publisher.wants("detection.completed")
    publisher.close()
