"""What both alert sinks share: which events alert, under which key, and the counting.

An :class:`AlertMonitor` is a monitor (``record(event)``, ``flush()``, ``close()``) that
takes ``anomaly.detected`` and ``drift.detected`` events, ignores every other type except
``model.retrained`` (read for the stream's algorithm, which the other events do not carry,
as the ``prometheus`` monitor does, and its model, which drift events do not carry),
groups them by key (:mod:`.grouping`) and hands each resulting notification to
:meth:`AlertMonitor.deliver`, which a sink implements.

The key is the alert's name (``AdcoreAnomaly`` or ``AdcoreDrift``), the stream and the model
(and, for drift, the detector): one alert per stream and model, whatever the record. A
model label's unsaved-refit suffix (``name@3+r2``) is left out of it, so a stream that
refits a stored model keeps one alert.

Delivery is synchronous, with the short timeout of :mod:`.transport`, and never retried
here. A failed delivery is counted (:attr:`AlertMonitor.stats`) and raised after the other
notifications of the call were tried; the event bus reports a monitor's first error once
(``monitor AlertmanagerMonitor failed on anomaly.detected: ...``) and keeps calling it,
so the stream goes on and later alerts are still attempted.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adcore.builtin.alerts import settings
from adcore.builtin.alerts.grouping import DEFAULT_INTERVAL, GroupingPolicy, Notification
from adcore.builtin.alerts.transport import DeliveryError, Send, post

ANOMALY, DRIFT = "anomaly.detected", "drift.detected"
ALERT_NAMES = {ANOMALY: "AdcoreAnomaly", DRIFT: "AdcoreDrift"}
_REFIT_SUFFIX = re.compile(r"\+r\d+$")
_MAX_STREAMS = 1024


@dataclass(frozen=True)
class AlertKey:
    """What makes two events the same alert."""

    alertname: str
    stream: str
    model: str
    detector: str = ""


@dataclass
class AlertStats:
    """Counts since the monitor was built: events taken, notifications sent, failed, held back."""

    events: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0


class AlertMonitor:
    """Events to grouped notifications; subclasses send them (see the module docstring)."""

    #: The sink's name in messages (``alertmanager``, ``webhook``).
    name = "alert"

    def __init__(
        self,
        *,
        interval: float | None = None,
        timeout: float | None = None,
        severity: str | None = None,
        generator_url: str | None = None,
        send: Send | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        every = settings.number(interval, settings.INTERVAL_ENV, DEFAULT_INTERVAL)
        self.grouping = GroupingPolicy(every) if clock is None else GroupingPolicy(every, clock=clock)
        self.timeout = settings.number(timeout, settings.TIMEOUT_ENV, settings.DEFAULT_TIMEOUT, positive=True)
        self.severity = settings.text(severity, settings.SEVERITY_ENV, settings.DEFAULT_SEVERITY) or "warning"
        self.generator_url = settings.text(generator_url, settings.GENERATOR_URL_ENV)
        self.send: Send = send or post
        self.stats = AlertStats()
        self._streams: OrderedDict[str, tuple[str, str]] = OrderedDict()  # stream: (algorithm, model)

    # ------------------------------------------------------------ the monitor port
    def record(self, event: Any) -> None:
        """Take one event; deliver the notification it causes, if any."""
        kind = getattr(event, "type", None)
        if kind == "model.retrained":
            self._remember_stream(event)
            return
        if kind not in ALERT_NAMES:
            return
        self.stats.events += 1
        notes = self.grouping.offer(self.key_of(event), event)
        if not notes:
            self.stats.suppressed += 1
        self._deliver_all(notes)

    def flush(self) -> None:
        """Send the held-back counts of keys whose interval has passed (once per micro-batch)."""
        self._deliver_all(self.grouping.due())

    def close(self) -> None:
        """Send every held-back count now: the last word on a burst is never lost at exit."""
        self._deliver_all(self.grouping.due(force=True))

    # ------------------------------------------------------------ for the sinks
    def deliver(self, note: Notification) -> None:
        """Send one notification (a sink implements it; raise :class:`DeliveryError` on failure).

        ``note.key`` is the :class:`AlertKey` of its events.
        """
        raise NotImplementedError

    def key_of(self, event: Any) -> AlertKey:
        """The event's :class:`AlertKey` (see the module docstring)."""
        stream = str(event.stream or "")
        model = getattr(event, "model", None) if event.type == ANOMALY else self._remembered(stream)[1]
        model = _REFIT_SUFFIX.sub("", str(model or ""))
        detector = str(getattr(event, "detector", "") or "") if event.type == DRIFT else ""
        return AlertKey(ALERT_NAMES[event.type], stream, model, detector)

    def labels(self, key: AlertKey) -> dict[str, str]:
        """The alert's identity: the key, the severity and the algorithm when known (no empty values)."""
        labels = {
            "alertname": key.alertname,
            "severity": self.severity,
            "stream": key.stream,
            "model": key.model,
            "algorithm": self._remembered(key.stream)[0],
            "detector": key.detector,
        }
        return {k: v for k, v in labels.items() if v}

    # ------------------------------------------------------------ internals
    def _deliver_all(self, notes: list[Notification]) -> None:
        first: DeliveryError | None = None
        for note in notes:
            try:
                self.deliver(note)
            except DeliveryError as exc:
                self.stats.failed += 1
                first = first or exc
            else:
                self.stats.sent += 1
        if first is not None:
            raise first

    def _remembered(self, stream: str) -> tuple[str, str]:
        """The stream's (algorithm, model) from its last ``model.retrained``, else empty."""
        return self._streams.get(stream, ("", ""))

    def _remember_stream(self, event: Any) -> None:
        stream, algorithm = getattr(event, "stream", None), getattr(event, "algorithm", None)
        if not stream or not algorithm:
            return
        self._streams[stream] = (str(algorithm), str(getattr(event, "model", None) or ""))
        self._streams.move_to_end(stream)
        while len(self._streams) > _MAX_STREAMS:
            self._streams.popitem(last=False)


def annotations(note: Notification) -> dict[str, str]:
    """What a person reads: the summary, the numbers of the event, the grouping counts (all strings)."""
    from adcore.builtin.jsonlog_monitor import describe

    event = note.event.to_dict()
    fields = ("offset", "line_number", "score", "threshold", "record_id")
    if event.get("type") == DRIFT:
        fields = ("offset", "on", "feature", "statistic", "threshold", "p_value", "action")
    out = {"summary": describe(event)}
    out.update({name: str(event[name]) for name in fields if event.get(name) is not None})
    out.update(
        events=str(note.events),
        suppressed=str(note.suppressed),
        total=str(note.total),
        first_seen=str(note.first_event.timestamp),
        last_seen=str(event.get("timestamp")),
    )
    if note.suppressed:
        since = out["first_seen"]
        out["summary"] += f" (+{note.suppressed} more in the interval, {note.total} since {since})"
    return out
