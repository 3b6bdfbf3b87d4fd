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

Delivery is asynchronous (:mod:`.sender`): ``record`` queues the notifications an event
causes and returns, whatever the receiver's state; one thread per monitor sends them, retrying
transient failures behind the receiver's circuit breaker, so an outage shorter than the
queue's capacity loses nothing and never stalls the stream. ``flush`` (once per micro-batch)
waits a bounded moment for the queue to empty, returning early when the receiver is down;
``close`` sends every held-back count and waits, bounded, through retries. Problems surface
as one :class:`DeliveryError` raised by ``flush`` or ``close``: a notification the receiver
refused (a 4xx, never retried), a receiver newly down (once per outage), notifications given
up at close. The event bus reports a monitor's first error once
(``monitor AlertmanagerMonitor failed on flush: ...``) and keeps calling it.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adcore.builtin.alerts import settings
from adcore.builtin.alerts.grouping import DEFAULT_INTERVAL, GroupingPolicy, Notification
from adcore.builtin.alerts.sender import Outbox, target_of
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
    """Counts since the monitor was built.

    ``events`` taken; ``suppressed`` of them held back by grouping; notifications ``sent``,
    ``failed`` (refused by the receiver, or still undelivered when the monitor closed) and
    ``dropped`` (the oldest of a full queue, during a long outage).
    """

    events: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    dropped: int = 0


class AlertMonitor:
    """Events to grouped notifications; subclasses send them (see the module docstring)."""

    #: The sink's name in messages and its dependency's kind (``alertmanager``, ``webhook``).
    name = "alert"
    #: Where notifications go (set by the sink before it is first used).
    url: str

    def __init__(
        self,
        *,
        interval: float | None = None,
        timeout: float | None = None,
        severity: str | None = None,
        generator_url: str | None = None,
        send: Send | None = None,
        clock: Callable[[], float] | None = None,
        queue_size: int | None = None,
        flush_timeout: float | None = None,
    ) -> None:
        every = settings.number(interval, settings.INTERVAL_ENV, DEFAULT_INTERVAL)
        self.grouping = GroupingPolicy(every) if clock is None else GroupingPolicy(every, clock=clock)
        self.timeout = settings.number(timeout, settings.TIMEOUT_ENV, settings.DEFAULT_TIMEOUT, positive=True)
        self.severity = settings.text(severity, settings.SEVERITY_ENV, settings.DEFAULT_SEVERITY) or "warning"
        self.generator_url = settings.text(generator_url, settings.GENERATOR_URL_ENV)
        self.send: Send = send or post
        self.queue_size = settings.count(queue_size, settings.QUEUE_ENV, settings.DEFAULT_QUEUE)
        self.flush_timeout = settings.number(
            flush_timeout, settings.FLUSH_TIMEOUT_ENV, settings.DEFAULT_FLUSH_TIMEOUT
        )
        self.stats = AlertStats()
        self._outbox: Outbox | None = None
        self._outbox_lock = threading.Lock()
        self._streams: OrderedDict[str, tuple[str, str]] = OrderedDict()  # stream: (algorithm, model)

    # ------------------------------------------------------------ the monitor port
    def record(self, event: Any) -> None:
        """Take one event; queue the notification it causes, if any (never blocks, never raises)."""
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
        self._queue_all(notes)

    def flush(self) -> None:
        """Queue the held-back counts of keys whose interval has passed (once per micro-batch),
        wait up to ``flush_timeout`` for delivery unless the receiver is down, report news."""
        self._queue_all(self.grouping.due())
        if self._outbox is not None:
            self._outbox.wait(self.flush_timeout)
        self._report()

    def close(self) -> None:
        """Send every held-back count: the last word on a burst is not lost at exit.

        Waits up to ``flush_timeout`` through retries; what is still undelivered then is
        counted as failed and reported.
        """
        self._queue_all(self.grouping.due(force=True))
        outbox = self._outbox
        if outbox is None:
            return
        down = outbox.down()
        left = outbox.close(self.flush_timeout)
        if left:
            why = outbox.down() or down or "no answer in time"
            n = f"{left} alert notification{'s' if left != 1 else ''}"
            raise DeliveryError(f"{n} not delivered at close: {why}")
        self._report()

    @property
    def pending(self) -> int:
        """Notifications queued or in flight, not delivered yet."""
        return 0 if self._outbox is None else self._outbox.pending

    # ------------------------------------------------------------ for the sinks
    def deliver(self, note: Notification) -> None:
        """Make one attempt at sending one notification (a sink implements it, through
        :attr:`send`; raise :class:`DeliveryError` on failure). Called on the sender thread,
        again for each retry: build the request here, not before.

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

    def labels_of(self, note: Notification) -> dict[str, str]:
        """The labels ``note`` was queued with (see :attr:`Notification.labels`)."""
        return dict(note.labels) if note.labels is not None else self.labels(note.key)

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
    def _queue_all(self, notes: list[Notification]) -> None:
        if notes:
            outbox = self._outbox or self._open_outbox()
            for note in notes:  # labels frozen now: every retry posts the same alert
                outbox.put(dataclasses.replace(note, labels=self.labels(note.key)))

    def _open_outbox(self) -> Outbox:
        """The outbox, made on the first notification (a monitor that never alerts starts no thread)."""
        with self._outbox_lock:
            if self._outbox is None:
                self._outbox = Outbox(
                    self.deliver,
                    kind=self.name,
                    target=target_of(self.url),
                    capacity=self.queue_size,
                    counts=self._add,
                )
            return self._outbox

    def _add(self, name: str, n: int) -> None:
        setattr(self.stats, name, getattr(self.stats, name) + n)

    def _report(self) -> None:
        news = None if self._outbox is None else self._outbox.news()
        if news is not None:
            raise DeliveryError(news)

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
