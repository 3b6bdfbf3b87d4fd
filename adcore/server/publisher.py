"""The server's events, delivered off the request path by one background thread.

A detect or score request publishes its events (``detection.completed``, ``anomaly.detected``,
``drift.detected``; a fit, ``model.saved``) on the same :class:`~adcore.domain.events.EventBus` a
stream uses, so monitors (``--monitor``) and the plugins' ``register_event_subscribers``
subscribers see the server's events as they see a stream's. A subscriber may be slow (it
posts to a pager) or broken, and neither may cost a request anything: the route hands its
events over once its response body is built, and this thread delivers them, in order. A
listener that raises is reported once in the server log (the bus's rule); an event sink that
fails is logged and the thread goes on. A full queue (listeners far slower than the traffic)
drops events rather than memory, with a warning at the first and per 1,000 dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

from adcore.domain.events import EVENT_TYPES, Event, EventBus

log = logging.getLogger("adcore.server")

MAX_QUEUED = 10_000  # batches of events (one per request) waiting for delivery
_STOP = object()


class EventPublisher:
    """Queues events for the bus and delivers them on a daemon thread (see the module docstring)."""

    def __init__(self, bus: EventBus, *, max_queued: int = MAX_QUEUED) -> None:
        self.bus = bus
        self.listening = any(bus.wants(t) for t in EVENT_TYPES)
        self.dropped = 0
        self._queue: queue.Queue[object] = queue.Queue(max_queued)
        self._thread: threading.Thread | None = None
        if self.listening:  # nobody listening: no thread, and routes build no events
            self._thread = threading.Thread(target=self._deliver, name="adcore-events", daemon=True)
            self._thread.start()

    def wants(self, event_type: str) -> bool:
        """Whether anyone listens for ``event_type`` (so a route may skip building it)."""
        return self.bus.wants(event_type)

    def publish(self, events: Sequence[Event]) -> None:
        """Hand ``events`` over for delivery, in order; never blocks, never raises."""
        if not events or self._thread is None:
            return
        try:
            self._queue.put_nowait(list(events))
        except queue.Full:
            before, self.dropped = self.dropped, self.dropped + len(events)
            if before == 0 or before // 1000 != self.dropped // 1000:
                log.warning("events: %d dropped so far (listeners slower than the traffic)", self.dropped)

    def _deliver(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is _STOP:
                return
            try:
                for event in batch:  # type: ignore[attr-defined]
                    self.bus.publish(event)
                self.bus.flush()
            except Exception as exc:  # an event sink's failure: logged, the server goes on
                log.warning("events: delivery failed: %s: %s", type(exc).__name__, exc)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then close the bus."""
        if self._thread is not None:
            try:
                self._queue.put(_STOP, timeout=timeout)
                self._thread.join(timeout)
            except queue.Full:
                log.warning("events: %d batches undelivered at shutdown", self._queue.qsize())
            self._thread = None
        self.bus.close()
