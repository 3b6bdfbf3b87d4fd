"""Training windows: which recent records a (re)fit sees.

- :class:`SlidingWindow` keeps the last ``size`` records, updated with every record, so a
  refit at any moment sees the most recent data (the usual choice for drift-triggered
  retraining: the model follows the stream as closely as possible).
- :class:`TumblingWindow` cuts the stream into consecutive, non-overlapping blocks of
  ``size`` records and offers the last *complete* block, so every model is trained on a
  whole, reproducible block (records 0-999, 1000-1999, ...) rather than on an arbitrary
  suffix. Before the first block is complete it offers the partial block, so a warm-up
  shorter than the window still has data to fit on.

Both store rows in preallocated float64 arrays: ``extend`` is a slice copy per micro-batch,
never a Python loop over records.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from adcore.errors import ParameterError
from adcore.services.streaming.config import WINDOW_TYPES

__all__ = ["WINDOW_TYPES", "SlidingWindow", "TumblingWindow", "Window", "make_window"]


class Window(Protocol):
    """What the service needs from a window."""

    size: int
    n_seen: int

    def extend(self, rows: np.ndarray) -> None: ...

    def contents(self) -> np.ndarray: ...

    def recent(self, m: int) -> np.ndarray: ...

    def __len__(self) -> int: ...


class SlidingWindow:
    """The last ``size`` rows (a ring buffer), oldest first in :meth:`contents`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.n_seen = 0
        self._buf: np.ndarray | None = None
        self._pos = 0  # where the next row goes
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def extend(self, rows: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        if self._buf is None:
            self._buf = np.empty((self.size, rows.shape[1]), dtype=np.float64)
        buf, size = self._buf, self.size
        self.n_seen += n
        if n >= size:
            buf[:] = rows[-size:]
            self._pos, self._count = 0, size
            return
        first = min(n, size - self._pos)
        buf[self._pos : self._pos + first] = rows[:first]
        buf[: n - first] = rows[first:]
        self._pos = (self._pos + n) % size
        self._count = min(self._count + n, size)

    def contents(self) -> np.ndarray:
        """A copy of the rows in arrival order (the caller may keep it)."""
        if self._buf is None:
            return np.empty((0, 0))
        if self._count < self.size:
            return self._buf[: self._count].copy()
        return np.concatenate([self._buf[self._pos :], self._buf[: self._pos]])

    def recent(self, m: int) -> np.ndarray:
        """A copy of the last ``min(m, len(self))`` rows, oldest first (a young model's data)."""
        return self.contents()[-max(1, min(m, self._count)) :] if self._count else self.contents()


class TumblingWindow:
    """Consecutive blocks of ``size`` rows; :meth:`contents` is the last complete one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.n_seen = 0
        self._current: np.ndarray | None = None
        self._filled = 0
        self._last: np.ndarray | None = None

    def __len__(self) -> int:
        return self.size if self._last is not None else self._filled

    def extend(self, rows: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        if self._current is None:
            self._current = np.empty((self.size, rows.shape[1]), dtype=np.float64)
        self.n_seen += n
        start = 0
        while start < n:
            take = min(n - start, self.size - self._filled)
            self._current[self._filled : self._filled + take] = rows[start : start + take]
            self._filled += take
            start += take
            if self._filled == self.size:
                self._last = self._current.copy()
                self._filled = 0

    def contents(self) -> np.ndarray:
        """The last complete block, or the partial first block before one is complete."""
        if self._last is not None:
            return self._last.copy()
        if self._current is None:
            return np.empty((0, 0))
        return self._current[: self._filled].copy()

    def recent(self, m: int) -> np.ndarray:
        """A copy of the last ``min(m, size)`` rows seen, across the block boundary if need be.

        A young model (after warm-up, or after a drift) trains on the records it has, not on
        a block: blocks are for the model that follows the stream once it is grown.
        """
        if self._current is None:
            return np.empty((0, 0))
        rows = self._current[: self._filled]
        if self._last is not None:
            rows = np.concatenate([self._last, rows])
        return rows[-max(1, min(m, self.size, len(rows))) :].copy()


def make_window(kind: str, size: int) -> SlidingWindow | TumblingWindow:
    """Build a window by name (``sliding`` or ``tumbling``)."""
    if kind == "sliding":
        return SlidingWindow(size)
    if kind == "tumbling":
        return TumblingWindow(size)
    raise ParameterError(f"unknown window type {kind!r}; choose sliding or tumbling")
