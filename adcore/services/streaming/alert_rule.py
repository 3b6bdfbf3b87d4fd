"""Which anomalous records page someone: ``--min-anomalies K --within N``, per key, suppressed.

A label is a statement about one record; an alert is a statement about a system. One
outlier in a metric is usually noise (a retried request, a slow GC), while several within a
short span are an incident. So a stream's ``anomaly.detected`` events (what the alert sinks and
monitors receive) are gated; the per-record labels in the output are not.

- **K of N.** An anomalous record raises an alert only when at least ``K`` of the last ``N``
  records *of its key* (itself included) are anomalous. ``K = N = 1`` is every anomalous
  record, as without the rule.
- **Per key.** With ``--alert-key FIELD`` each value of the record's field (a host, a meter,
  a customer) has its own last-``N`` records, so a noisy host cannot raise or hide another's
  alert; without it the stream is one key.
- **Suppression.** ``--suppress R`` keeps a key that just alerted quiet for the stream's next
  ``R`` records: the alerts in between are held back and counted, the first alert after the
  span is sent (and opens the next span), and whatever is still held back when the stream
  ends is sent then. That is the alert sinks' own grouping policy
  (:class:`~adcore.builtin.alerts.grouping.GroupingPolicy`), reused with the stream's record
  count as its clock, so the span is in records (the same whatever the batch size or the
  replay speed) rather than seconds. Its trailing edge (``due()``, a timer's job) is not used
  between records: sent at batch ends, it would make the alerts depend on the batch size.

State: per active key, the positions of its anomalous records within its last ``N`` (at most
``K`` are needed, and ``N`` bounds them) and its record count; at most ``max_keys`` keys, the
least recently seen forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from adcore.builtin.alerts.grouping import DEFAULT_MAX_KEYS, GroupingPolicy
from adcore.errors import ParameterError

#: The key of every record when the stream has no ``--alert-key``.
STREAM_KEY = "__stream__"


def check_alert_rule(min_anomalies: int, within: int, suppress: int) -> None:
    """One-line ``ParameterError`` for a rule that cannot hold (K < 1, N < K, R < 0)."""
    for option, value, least in (("--min-anomalies", min_anomalies, 1), ("--within", within, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ParameterError(f"{option} must be an integer >= {least}, got {value!r}")
    if within < min_anomalies:
        raise ParameterError(
            f"--within ({within}) must be at least --min-anomalies ({min_anomalies}): "
            f"{min_anomalies} anomalies cannot fit in {within} records"
        )
    if isinstance(suppress, bool) or not isinstance(suppress, int) or suppress < 0:
        raise ParameterError(f"--suppress must be an integer >= 0 (records), got {suppress!r}")


@dataclass
class _Key:
    seen: int = 0  # records of this key so far
    hits: deque[int] | None = None  # their positions (in ``seen``) of the recent anomalous ones


class AlertRule:
    """K-of-N per key, then the grouping policy's suppression; see the module docstring."""

    def __init__(
        self, min_anomalies: int = 1, within: int = 1, suppress: int = 0, *, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        check_alert_rule(min_anomalies, within, suppress)
        self.k, self.n, self.suppress = min_anomalies, within, suppress
        self.max_keys = max_keys
        self._keys: OrderedDict[Hashable, _Key] = OrderedDict()
        self._now = 0  # the clock of the grouping policy: records seen by the rule
        self._grouping = GroupingPolicy(float(suppress), clock=self._clock, max_keys=max_keys)

    @property
    def trivial(self) -> bool:
        """Every anomalous record alerts (no K-of-N, no suppression): the rule can be skipped."""
        return self.k == 1 and self.suppress == 0

    def _clock(self) -> float:
        return float(self._now)

    def observe(
        self, keys: Sequence[Hashable] | None, flags: Sequence[bool], events: Iterable[Any]
    ) -> list[Any]:
        """The alerts among the records of one scored segment, in order.

        ``keys``: one per record (``None``: the stream is one key); ``flags``: whether each
        record is anomalous; ``events``: one per *anomalous* record, in order (built only for
        those). Returns the events to publish: those that pass the rule and the suppression.
        """
        out: list[Any] = []
        pending = iter(events)
        for i, flag in enumerate(flags):
            self._now += 1
            key = STREAM_KEY if keys is None else _hashable(keys[i])
            state = self._state(key)
            position = state.seen
            state.seen += 1
            if not flag:
                continue
            event = next(pending)
            assert state.hits is not None
            state.hits.append(position)
            while state.hits and state.hits[0] <= position - self.n:
                state.hits.popleft()
            if len(state.hits) >= self.k:
                out += [note.event for note in self._grouping.offer(key, event)]
        return out

    def close(self) -> list[Any]:
        """The alerts still held back (sent at the end of the stream)."""
        return [note.event for note in self._grouping.due(force=True)]

    def _state(self, key: Hashable) -> _Key:
        state = self._keys.get(key)
        if state is None:
            if len(self._keys) >= self.max_keys:
                self._keys.popitem(last=False)
            state = self._keys[key] = _Key(hits=deque(maxlen=self.n))
        else:
            self._keys.move_to_end(key)
        return state


def _hashable(value: Any) -> Hashable:
    """A record field as a key: lists and dicts (unhashable JSON values) by their text."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
