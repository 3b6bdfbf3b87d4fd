"""The ``alertmanager`` monitor: grouped alerts posted to Prometheus Alertmanager's v2 API.

``POST {ADCORE_ALERTMANAGER_URL}/api/v2/alerts`` with one alert per notification. Its labels
are its identity in Alertmanager (which deduplicates, groups, silences and routes on them):
``alertname`` (``AdcoreAnomaly`` or ``AdcoreDrift``), ``severity``, ``stream``, ``model`` and
``algorithm`` when known, ``detector`` for drift; the per-event numbers (score, threshold,
offset, drift statistic) and the grouping counts are annotations, so that the follow-up
notification of a burst updates the same alert instead of opening another. ``startsAt`` is
the burst's first event, ``endsAt`` one interval after the notification (a quiet key
resolves by itself; a busy one is re-posted, extending it), ``generatorURL`` is
``$ADCORE_ALERT_GENERATOR_URL`` when set.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from adcore.builtin.alerts import settings
from adcore.builtin.alerts.grouping import Notification
from adcore.builtin.alerts.monitor import AlertMonitor, annotations
from adcore.io import jsonio

API_PATH = "/api/v2/alerts"


def alerts_url(base: str) -> str:
    """The v2 alerts endpoint under ``base`` (given either as the server or as the endpoint)."""
    base = base.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


class AlertmanagerMonitor(AlertMonitor):
    """Posts each grouped notification as one Alertmanager alert (see the module docstring)."""

    name = "alertmanager"

    def __init__(self, url: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.url = alerts_url(settings.url(url, settings.ALERTMANAGER_URL_ENV, monitor=self.name))

    def alert(self, note: Notification) -> dict[str, Any]:
        """The v2 API's ``postableAlert`` for one notification."""
        alert: dict[str, Any] = {
            "labels": self.labels_of(note),
            "annotations": annotations(note),
            "startsAt": note.first_event.timestamp,
        }
        if self.grouping.interval > 0:
            ends = datetime.now(timezone.utc) + timedelta(seconds=self.grouping.interval)
            alert["endsAt"] = ends.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.generator_url:
            alert["generatorURL"] = self.generator_url
        return alert

    def deliver(self, note: Notification) -> None:
        body = jsonio.dumps([self.alert(note)])
        self.send(self.url, body, {"Content-Type": "application/json"}, self.timeout)
