"""Grouping and suppression: at most one notification per alert key per interval.

A stream in trouble emits an ``anomaly.detected`` per bad record: hundreds a second. A pager
must see one notification, saying how many events it stands for. The policy here is a
throttle with a leading and a trailing edge, per key:

- the first event of a key is notified at once (nobody waits for a burst to end to be paged)
  and opens the key's window of ``interval`` seconds;
- later events inside the window are counted, not notified (the latest one is kept);
- when the window has passed (:meth:`GroupingPolicy.due`, called once per micro-batch, and at
  close with ``force=True``), one notification carries the latest event and the count of
  those held back, and opens the next window; a window with nothing held back closes the
  key's episode, and its state is dropped.

So a key gets at most one notification per interval, a burst of N events becomes two (the
first, then "N - 1 more"), and a steady trickle one per interval. ``total`` counts the
events of the episode, so the last notification of a burst says how big it was.

The state is small and in memory: one :class:`_Group` per active key, at most
``max_keys`` (the least recently active one is dropped beyond that, its pending count
notified first). It is pure: time comes from an injected ``clock`` (``time.monotonic`` by
default), so tests step through windows without sleeping. Not thread-safe: a monitor is
called from one thread (the stream's, or the server's event thread).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INTERVAL = 300.0
DEFAULT_MAX_KEYS = 10_000


@dataclass(frozen=True)
class Notification:
    """One notification to send for ``key``.

    ``event`` is the event it carries (the first of a window, or the latest held back);
    ``events`` how many events it stands for; ``suppressed`` how many of them were held back
    rather than notified one by one; ``total`` the events of the key's episode so far;
    ``opened`` the clock time the episode began (the alert's start); ``id`` a UUID of its
    own, kept by every attempt to deliver it (a webhook receiver de-duplicates retries on it);
    ``labels`` the alert's labels as they were when it was queued (a retry an hour later
    must post the same alert, whatever the stream learnt since).
    """

    key: Hashable
    event: Any
    events: int
    suppressed: int
    total: int
    opened: float
    first_event: Any
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    labels: dict[str, str] | None = None  # set by the alert monitor when it queues the notification


@dataclass
class _Group:
    opened: float  # when the episode began
    window_end: float  # no notification for this key before then
    total: int  # events of the episode
    pending: int  # events held back since the last notification
    latest: Any  # the latest event held back
    first_event: Any  # the episode's first event (its timestamp is the alert's start)


class GroupingPolicy:
    """Decides which events become notifications (see the module docstring)."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.interval = float(interval)
        self.clock = clock
        self.max_keys = max_keys
        self._groups: OrderedDict[Hashable, _Group] = OrderedDict()

    def __len__(self) -> int:
        """Active keys (the size of the state)."""
        return len(self._groups)

    def offer(self, key: Hashable, event: Any) -> list[Notification]:
        """Count ``event`` under ``key``; the notifications to send now (none, or one).

        More than one only when a new key pushes the least recent one out of a full state
        with events still held back: that one's count is sent rather than lost.
        """
        now = self.clock()
        out: list[Notification] = []
        group = self._groups.get(key)
        if group is not None and now >= group.window_end:
            # The window passed without a due() call: send this event with the held-back count.
            group.total += 1
            note = self._notify(key, group, event, group.pending + 1, group.pending, now)
            return [note]
        if group is not None:
            group.total += 1
            group.pending += 1
            group.latest = event
            self._groups.move_to_end(key)
            return out
        if len(self._groups) >= self.max_keys:
            old_key, old = self._groups.popitem(last=False)
            if old.pending:
                out.append(self._summary(old_key, old))
        group = _Group(opened=now, window_end=now, total=1, pending=0, latest=None, first_event=event)
        self._groups[key] = group
        out.append(self._notify(key, group, event, 1, 0, now))
        return out

    def due(self, *, force: bool = False) -> list[Notification]:
        """Notifications for keys whose window has passed with events held back.

        ``force=True`` (at close) sends every held-back count now, windows or not, and
        forgets every key. Keys whose window passed with nothing held back are forgotten:
        their next event starts a new episode and is notified at once.
        """
        now = self.clock()
        out: list[Notification] = []
        for key in list(self._groups):
            group = self._groups[key]
            if not force and now < group.window_end:
                continue
            held = group.pending
            if held:
                out.append(self._summary(key, group) if force else self._notify_pending(key, group, now))
            if force or not held:
                del self._groups[key]
        return out

    # ---------------------------------------------------------------- internals
    def _notify(
        self, key: Hashable, group: _Group, event: Any, events: int, suppressed: int, now: float
    ) -> Notification:
        group.window_end = now + self.interval
        group.pending, group.latest = 0, None
        self._groups.move_to_end(key)
        return Notification(key, event, events, suppressed, group.total, group.opened, group.first_event)

    def _notify_pending(self, key: Hashable, group: _Group, now: float) -> Notification:
        return self._notify(key, group, group.latest, group.pending, group.pending, now)

    @staticmethod
    def _summary(key: Hashable, group: _Group) -> Notification:
        return Notification(
            key, group.latest, group.pending, group.pending, group.total, group.opened, group.first_event
        )
