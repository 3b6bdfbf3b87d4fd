"""Delivery off the stream's thread: a bounded outbox, one sender thread, retries and a breaker.

A receiver (Alertmanager, a webhook) restarts, fails over, or is down for an hour. The stream
that raised the alert must not wait for it, and the alert must not be lost because the pager
blinked. So a monitor hands each notification to its :class:`Outbox` and goes on
(``put`` never blocks); one daemon thread per monitor sends them, oldest first:

- each send is a call through the receiver's
  :class:`~adcore.services.resilience.Dependency` (``alertmanager 10.0.0.7:9093``, not
  critical: a dead pager does not make the API unready), which retries transient failures
  (:func:`.transport.is_transient`: refused or reset connection, timeout, HTTP 5xx or 429)
  with jittered backoff and counts them towards its circuit breaker;
- when the retries run out or the breaker is open, the notification goes back to the head of
  the queue and the thread waits until the breaker lets a trial call through
  (``retry_after``), then tries again, for as long as it takes: an outage costs latency, not
  alerts;
- a permanent failure (any other 4xx: the receiver refuses this request and always will) is
  not retried: the notification is counted as failed and reported;
- the queue holds ``capacity`` notifications (the one in flight included); when it is full
  the *oldest* is dropped and counted (``dropped``): the latest state of a burst is worth
  more than its first page, and memory stays bounded however long the outage.

Order is kept (one in flight at a time, put back at the head), so an Alertmanager alert's
later notification never lands before its earlier one. :meth:`Outbox.wait` is what a
monitor's ``flush`` and ``close`` use to give delivery a bounded moment.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

from adcore.builtin.alerts.grouping import Notification
from adcore.builtin.alerts.transport import DeliveryError, is_transient
from adcore.errors import ServiceUnavailableError


def target_of(url: str) -> str:
    """``host:port`` of ``url`` (the default port of its scheme when none is given): the
    receiver's name in the breaker's messages and metrics, without path or credentials."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Outbox:
    """A bounded queue of notifications and the thread that delivers them (see the module).

    ``send_one(note)`` makes one attempt and raises on failure; ``kind`` and ``target`` name
    the receiver's dependency; ``counts(name, n)`` adds to the monitor's statistics
    (``sent``, ``failed``, ``dropped``), called with the outbox's lock held. Its ``put`` and
    ``wait`` are for one caller thread (the monitor's), as a monitor is.
    """

    def __init__(
        self,
        send_one: Callable[[Notification], None],
        *,
        kind: str,
        target: str,
        capacity: int,
        counts: Callable[[str, int], None],
    ) -> None:
        self.kind = kind
        self.target = target
        self.capacity = capacity
        self._send_one = send_one
        self._count = counts
        self._queue: deque[Notification] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._in_flight = False
        self._stopping = False
        self._closed = False
        self._drop_in_flight = False
        self._paused_until = 0.0  # monotonic time before which nothing is attempted
        self._trouble: str | None = None  # why the last call gave up, until a delivery succeeds
        self._reported_trouble = False
        self._refused: tuple[str, int] | None = None  # the first refusal not yet reported, and how many

    # ------------------------------------------------------------ the caller's side
    def put(self, note: Notification) -> None:
        """Queue ``note`` for delivery; never blocks (a full queue drops its oldest)."""
        with self._cond:
            if self._stopping:
                self._count("failed", 1)
                return
            in_flight = self._in_flight and not self._drop_in_flight
            if len(self._queue) + in_flight >= self.capacity:  # full: the oldest goes
                if in_flight:  # the oldest is the one in flight: not retried if this attempt fails
                    self._drop_in_flight = True
                else:
                    self._queue.popleft()
                self._count("dropped", 1)
            self._queue.append(note)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"adcore-alerts-{self.kind}", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Notifications not delivered yet (queued or in flight); none once closed."""
        with self._cond:
            in_flight = self._in_flight and not self._drop_in_flight
            return 0 if self._closed else len(self._queue) + in_flight

    def down(self) -> str | None:
        """Why the receiver is not taking notifications now (None when it is, or nothing failed)."""
        with self._cond:
            return self._trouble

    def wait(self, timeout: float, *, while_down: bool = False) -> bool:
        """Wait until everything queued is delivered (True), at most ``timeout`` seconds.

        Returns early (False) when the receiver is down: a call gave up (its retries ran
        out, or the breaker is open) and nothing got through since. A blip that a retry
        rides out is waited for. With ``while_down`` (closing) it waits on through the
        breaker's pauses as long as the next try falls within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                now = time.monotonic()
                if now >= deadline:
                    return False
                if self._trouble is not None and (not while_down or self._paused_until >= deadline):
                    return False
                self._cond.wait(deadline - now)
            return True

    def news(self) -> str | None:
        """What went wrong since the last call, once: refused notifications, or a receiver
        newly down (reported once per outage, until a delivery succeeds again)."""
        with self._cond:
            if self._refused is not None:
                (first, n), self._refused = self._refused, None
                more = f" (and {n - 1} more refused)" if n > 1 else ""
                return f"{first}{more}: not retried"
            if self._trouble is not None and not self._reported_trouble and (self._queue or self._in_flight):
                self._reported_trouble = True
                n = len(self._queue) + self._in_flight
                pending = f"{n} notification{'s' if n != 1 else ''} pending"
                return f"{self._trouble} ({pending}, retried in the background)"
            return None

    def close(self, timeout: float) -> int:
        """Deliver what is queued (waiting at most ``timeout`` seconds through retries), stop
        the thread; the number of notifications given up (counted as failed)."""
        deadline = time.monotonic() + timeout
        self.wait(timeout, while_down=True)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:  # let the attempt in flight end (it is bounded by the retry budget)
            thread.join(max(0.0, deadline - time.monotonic()) + 0.1)
        with self._cond:
            self._closed = True
            in_flight = self._in_flight and not self._drop_in_flight
            left = len(self._queue) + in_flight  # one still in flight is given up too
            self._queue.clear()
            if left:
                self._count("failed", left)
        return left

    # ------------------------------------------------------------ the sender thread
    def _dependency(self) -> Any:
        from adcore.services import resilience

        return resilience.dependency(self.kind, self.target, is_transient, critical=False)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or time.monotonic() < self._paused_until):
                    pause = self._paused_until - time.monotonic()
                    self._cond.wait(pause if self._queue and pause > 0 else None)
                if self._stopping:
                    return
                note = self._queue.popleft()
                self._in_flight = True
            outcome = self._attempt(note)
            with self._cond:
                self._in_flight = False
                given_up = "dropped" if self._drop_in_flight else "failed" if self._closed else None
                self._drop_in_flight = False
                if given_up is not None:  # close() or a full queue counted it while in flight
                    if outcome == "sent":  # it got through after all
                        self._count(given_up, -1)
                        self._count("sent", 1)
                elif outcome in ("sent", "failed"):
                    self._count(outcome, 1)
                else:
                    self._queue.appendleft(note)  # first in line for the next try
                self._cond.notify_all()

    def _attempt(self, note: Notification) -> str:
        """One delivery through the dependency: ``sent``, ``failed`` (permanent) or ``retry``."""
        try:
            self._dependency().call(
                lambda: self._send_one(note), action=f"sending an alert to {self.kind}", idempotent=True
            )
        except ServiceUnavailableError as exc:
            with self._cond:
                self._trouble = _one_line(exc)
                self._paused_until = time.monotonic() + max(0.05, exc.retry_after or 1.0)
            return "retry"
        except Exception as exc:  # DeliveryError (a 4xx), or a sink's bug: retrying cannot help
            message = _one_line(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            with self._cond:
                first, n = self._refused or (message, 0)
                self._refused = (first, n + 1)
            return "failed"
        with self._cond:
            self._trouble = None
            self._reported_trouble = False
            self._paused_until = 0.0
        return "sent"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
