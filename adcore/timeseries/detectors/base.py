"""The time-series detector contract: fitted on a warm-up prefix, then scored point by point.

A time-series detector is split in two parts so each can be reused and tested alone:

- a *raw scorer* (:class:`RawScorer`) turns each new value into an unbounded raw score
  (higher = more unusual) using only the values up to it, learning as it goes
  ("test-then-train"), with fixed-size numpy buffers as its whole per-series state;
- a *post-processor* (``adcore.timeseries.detectors.likelihood``) turns raw scores, whose
  scale differs by detector and by series, into a score in ``[0, 1]``.

:class:`CausalDetector` joins them and is what :class:`TimeSeriesDetector` describes.
``score_series`` is the vectorised form of calling ``update_score`` on each value in turn:
it gives the same scores (to floating-point rounding) and leaves the same state behind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

import numpy as np

from adcore.errors import DataError, ParameterError


@runtime_checkable
class TimeSeriesDetector(Protocol):
    """A causal detector of one series: each score uses only the values up to its own."""

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> TimeSeriesDetector:
        """Learn from a warm-up prefix and prime the state with it (its end is "now")."""
        ...

    def update_score(self, value: float, timestamp: object = None) -> float:
        """Score one new value in ``[0, 1]`` and learn from it."""
        ...

    def score_series(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        """``update_score`` on each value in turn, vectorised."""
        ...

    def state_nbytes(self) -> int:
        """Bytes of per-series state (the numpy buffers), what thousands of series multiply."""
        ...


def as_series(values: np.ndarray, what: str = "series") -> np.ndarray:
    """A 1-d float64 copy of ``values``, refusing non-finite values with a one-line error."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise DataError(f"the {what} holds non-finite values (NaN or infinity)")
    return x


def positive_int(name: str, value: int, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise ParameterError(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return int(value)


class Ring:
    """A fixed-size history of the last ``size`` floats; ``view()`` is oldest first.

    One array of ``size`` floats and a write position: the whole per-series cost. ``view()``
    is a slice while the ring has not wrapped and a chronological copy after (a copy of a
    few hundred floats costs less than the arithmetic done on it), so both the
    point-by-point and the vectorised paths work on the same contiguous, ordered values.
    """

    __slots__ = ("_data", "_pos", "count", "size")

    def __init__(self, size: int) -> None:
        self.size = positive_int("buffer size", size)
        self._data = np.zeros(self.size)
        self._pos = 0
        self.count = 0

    def push(self, value: float) -> None:
        self._data[self._pos] = value
        self._pos = (self._pos + 1) % self.size
        self.count = min(self.count + 1, self.size)

    def extend(self, values: np.ndarray) -> None:
        tail = np.asarray(values, dtype=np.float64)[-self.size :]
        if tail.size == 0:
            return
        self._data[(self._pos + np.arange(tail.size)) % self.size] = tail
        self._pos = (self._pos + tail.size) % self.size
        self.count = min(self.count + tail.size, self.size)

    def view(self) -> np.ndarray:
        """The last ``count`` values, oldest first (do not keep it across pushes)."""
        if self.count < self.size:
            return self._data[: self.count]
        if self._pos == 0:
            return self._data
        return np.concatenate((self._data[self._pos :], self._data[: self._pos]))

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)


class RawScorer(ABC):
    """Raw scores of one series, test-then-train. Subclasses implement ``_step``; ``batch``
    may be overridden by a vectorised form that leaves the same state behind."""

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        """Learn from the warm-up and prime the state; returns the warm-up's raw scores
        (what the post-processor learns the usual range of raw scores from)."""
        return self.batch(values, timestamps)

    @abstractmethod
    def step(self, value: float, timestamp: object = None) -> float:
        """Raw score of one new value, then learn from it."""

    def batch(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        return np.array([self.step(float(v)) for v in x])

    @abstractmethod
    def state_nbytes(self) -> int: ...


class PostProcessor(ABC):
    """Maps raw scores to ``[0, 1]``, causally (its own state learns from the raw scores)."""

    def fit(self, raw: np.ndarray) -> None:
        self.batch(raw)

    @abstractmethod
    def step(self, raw: float) -> float: ...

    def batch(self, raw: np.ndarray) -> np.ndarray:
        return np.array([self.step(float(r)) for r in np.asarray(raw, dtype=np.float64)])

    @abstractmethod
    def state_nbytes(self) -> int: ...


class CausalDetector:
    """A raw scorer followed by a post-processor: the concrete :class:`TimeSeriesDetector`."""

    def __init__(self, raw: RawScorer, post: PostProcessor, *, name: str = "") -> None:
        self.raw = raw
        self.post = post
        self.name = name or type(raw).__name__
        self.fitted_ = False

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> CausalDetector:
        x = as_series(values, "warm-up")
        if x.size == 0:
            raise DataError("the warm-up holds no values")
        self.post.fit(self.raw.fit(x, timestamps))
        self.fitted_ = True
        return self

    def _check(self) -> None:
        if not self.fitted_:
            raise ParameterError(f"{self.name}: fit on a warm-up prefix before scoring")

    def update_score(self, value: float, timestamp: object = None) -> float:
        self._check()
        v = float(value)
        if not np.isfinite(v):
            raise DataError(f"{self.name}: a non-finite value cannot be scored")
        return self.post.step(self.raw.step(v, timestamp))

    def score_series(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        self._check()
        x = as_series(values)
        if x.size == 0:
            return np.zeros(0)
        return self.post.batch(self.raw.batch(x, timestamps))

    def state_nbytes(self) -> int:
        return self.raw.state_nbytes() + self.post.state_nbytes()


def score_with_warmup(
    detector: TimeSeriesDetector, values: np.ndarray, warmup: int, timestamps: np.ndarray | None = None
) -> np.ndarray:
    """Scores of a whole series: 0 for the first ``warmup`` values (fitted on them), then causal."""
    x = as_series(values)
    k = max(1, min(int(warmup), x.size))
    detector.fit(x[:k], None if timestamps is None else timestamps[:k])
    out = np.zeros(x.size)
    if k < x.size:
        out[k:] = detector.score_series(x[k:], None if timestamps is None else timestamps[k:])
    return out
