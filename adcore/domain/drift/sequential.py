"""Sequential change detectors on a 1-D score stream: ADWIN and Page-Hinkley.

Unlike the window tests these look at every value, so they localise a change to within a
few dozen records and need no reference sample; they only follow the mean, which is what
moves when a model starts scoring differently. Both give the same detections whatever the
batch boundaries (the streaming service's micro-batch size is not a model parameter).
"""

from __future__ import annotations

import math

import numpy as np

from adcore.domain.drift._common import DriftSignal, as_scores, check_float, check_int, params_repr
from adcore.errors import ParameterError


class ADWIN:
    """ADWIN2 (Bifet & Gavalda 2007): an adaptive window whose older and newer parts must agree in mean.

    The window is an exponential histogram: rows of at most ``max_buckets`` buckets, row i
    holding sums of 2^i consecutive values (with their within-bucket variance), so a window
    of W values costs O(max_buckets log W) memory and a check O(max_buckets log W) time. Every
    ``clock`` values each bucket boundary splits the window into an older W0 and a newer W1
    (both at least ``min_window`` values), and a change is declared when

        |mean(W0) - mean(W1)| > sqrt(2/m * var_W * ln(2/d')) + 2/(3m) * ln(2/d'),
        1/m = 1/|W0| + 1/|W1|,  d' = delta / ln|W|

    (the paper's Bernstein-type cut for ADWIN2; ``d'`` spreads ``delta`` over the O(log W)
    cuts it tests; river and MOA use ``n - min_window + 1`` for the sub-window sizes in ``m``,
    which fires at most a clock tick later). After a detection the window restarts empty, as
    river's does: the paper's ADWIN keeps shrinking the window instead, and as the cut point
    sharpens over the next checks it reports the same change several times (each would be a
    separate ``drift.detected`` event). A ``reference`` passed to ``reset`` pre-fills the
    window, so the first values are compared with it.
    """

    name = "adwin"

    def __init__(
        self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5, min_window: int = 5
    ) -> None:
        self.delta = check_float("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
        self.clock = check_int("clock", clock, minimum=1)
        self.max_buckets = check_int("max_buckets", max_buckets, minimum=2)
        self.min_window = check_int("min_window", min_window, minimum=1)
        self._seen = 0
        self.reset()

    @property
    def width(self) -> int:
        """Values currently in the adaptive window."""
        return self._width

    @property
    def estimation(self) -> float:
        """Mean of the adaptive window (0.0 when empty)."""
        return self._total / self._width if self._width else 0.0

    def reset(self, reference: np.ndarray | None = None) -> None:
        """Empty the window, then pre-fill it with ``reference`` if given (no checks run on it)."""
        self._clear()
        if reference is not None:
            self._feed(as_scores(reference, self.name, "reference"), check=False)

    def _clear(self) -> None:
        self._rows: list[list[float]] = [[]]  # bucket totals, row i = buckets of 2^i values, oldest first
        self._vars: list[list[float]] = [[]]  # within-bucket sums of squared deviations (row 0: unused)
        self._width = 0
        self._total = 0.0
        self._var = 0.0  # sum of squared deviations over the whole window
        self._tick = 0

    def update(self, values: np.ndarray) -> list[DriftSignal]:
        """Feed a batch of scores; one signal per check that found a cut (the window then restarts)."""
        return self._feed(as_scores(values, self.name), check=True)

    def _feed(self, x: np.ndarray, check: bool) -> list[DriftSignal]:
        # The hot loop: everything is a local, row 0 (single values, whose within-bucket
        # variance is 0 and not stored) is appended inline, merges are amortised O(1).
        signals: list[DriftSignal] = []
        row0 = self._rows[0]
        max_b = self.max_buckets
        clock = self.clock
        width, total, var, tick = self._width, self._total, self._var, self._tick
        seen = self._seen
        for v in x.tolist():
            if width:
                d = v - total / width
                var += width * d * d / (width + 1)
            width += 1
            total += v
            row0.append(v)
            if len(row0) > max_b:
                self._compress()
            if check:
                seen += 1
                tick += 1
                if tick == clock:
                    tick = 0
                    self._width, self._total, self._var = width, total, var
                    signal = self._check(seen - 1)
                    if signal is not None:  # the window restarted empty
                        signals.append(signal)
                        row0 = self._rows[0]
                        width, total, var = 0, 0.0, 0.0
        self._width, self._total, self._var, self._tick = width, total, var, tick
        self._seen = seen
        return signals

    def _compress(self) -> None:
        """Merge the two oldest buckets of each over-full row into one of the next row."""
        rows, vars_ = self._rows, self._vars
        i = 0
        size = 1.0
        while len(rows[i]) > self.max_buckets:
            if i + 1 == len(rows):
                rows.append([])
                vars_.append([])
            t1, t2 = rows[i][0], rows[i][1]
            # Chan et al.: M2(a+b) = M2(a) + M2(b) + n_a n_b / (n_a + n_b) (mean_a - mean_b)^2
            v = (t1 - t2) * (t1 - t2) / (2.0 * size)
            if i:
                v += vars_[i][0] + vars_[i][1]
                del vars_[i][:2]
            del rows[i][:2]
            rows[i + 1].append(t1 + t2)
            vars_[i + 1].append(v)
            i += 1
            size *= 2.0

    def _find_cut(self) -> tuple[float, float] | None:
        """The first split (oldest first) whose means differ by more than the cut, as (|diff|, eps)."""
        width = self._width
        minw = self.min_window
        if width < 2 * minw:
            return None
        total = self._total
        dd = math.log(2.0 * math.log(width) / self.delta)
        var_w = self._var / width
        sqrt = math.sqrt
        n0 = 0
        u0 = 0.0
        for i in range(len(self._rows) - 1, -1, -1):
            size = 1 << i
            for t in self._rows[i]:
                n0 += size
                u0 += t
                n1 = width - n0
                if n1 < minw:
                    return None
                if n0 >= minw:
                    m_recip = 1.0 / n0 + 1.0 / n1
                    diff = abs(u0 / n0 - (total - u0) / n1)
                    eps = sqrt(2.0 * m_recip * var_w * dd) + (2.0 / 3.0) * dd * m_recip
                    if diff > eps:
                        return diff, eps
        return None

    def _check(self, index: int) -> DriftSignal | None:
        cut = self._find_cut()
        if cut is None:
            return None
        self._clear()
        return DriftSignal(detector=self.name, statistic=cut[0], threshold=cut[1], index=index)

    def __repr__(self) -> str:
        return params_repr(self, ("delta", "clock", "max_buckets", "min_window"))


class PageHinkley:
    """Page-Hinkley test for a shift of the mean (river's formulation, fading optional).

    With ``mean_t`` the running mean since the last restart, it tracks
    ``S_t = alpha * S_(t-1) + (x_t - mean_t - delta)`` and signals an increase when
    ``S_t - min S`` exceeds ``threshold`` (a decrease symmetrically with ``+ delta``), once
    ``min_instances`` values have been seen; it then restarts from scratch, like river's.
    ``delta`` (the drift of the mean tolerated without alarm) and ``threshold`` are in the
    units of the values; the defaults suit scores of unit spread: they detect a one-sigma
    shift after about 40 values with no false alarm in 6 million stationary values. ``alpha``
    (river's fading factor) defaults to 1, no fading: with ``alpha < 1`` the allowance
    ``delta`` fades too (``S`` settles at ``-delta / (1 - alpha)``), after which ``S`` is
    noise with standard deviation ``sigma / sqrt(1 - alpha^2)`` (70 sigma at ``1 - 1e-4``) and
    ``S - min S`` crosses any practical threshold: river's defaults ``delta=0.005,
    threshold=50, alpha=1-1e-4`` raise about 60 false alarms per 100,000 N(0, 1) values.

    The recursion is evaluated a batch at a time: the running mean from a cumulative sum,
    ``S`` as a discounted cumulative sum, the running extremes with ``minimum.accumulate``;
    only detections (rare) cause a Python-level restart. ``reset(reference)`` starts the
    running mean at the reference's mean, weighted by its size.
    """

    name = "page-hinkley"
    _DIRECTIONS = ("up", "down", "both")

    def __init__(
        self,
        delta: float = 0.25,
        threshold: float = 30.0,
        alpha: float = 1.0,
        min_instances: int = 30,
        direction: str = "both",
    ) -> None:
        self.delta = check_float("delta", delta, low=0.0)
        self.threshold = check_float("threshold", threshold, low=0.0, low_open=True)
        self.alpha = check_float("alpha", alpha, low=0.0, high=1.0, low_open=True)
        self.min_instances = check_int("min_instances", min_instances, minimum=1)
        if direction not in self._DIRECTIONS:
            raise ParameterError(f"direction must be one of {', '.join(self._DIRECTIONS)}, got {direction!r}")
        self.direction = direction
        # Batches are processed in chunks: short enough that the discount factors alpha^-k
        # cannot overflow, and bounded so that a restart after a detection recomputes at most
        # one chunk (linear time even when a huge batch holds many detections).
        log_a = -math.log(self.alpha)
        self._chunk = 8192 if log_a == 0.0 else max(1, min(8192, int(300.0 / log_a)))
        self._seen = 0
        self.reset()

    def reset(self, reference: np.ndarray | None = None) -> None:
        """Restart the test; with ``reference``, deviations are measured from its mean at first."""
        self._restart()
        if reference is not None:
            ref = as_scores(reference, self.name, "reference")
            self._n = len(ref)
            self._mean = float(ref.mean()) if len(ref) else 0.0

    def _restart(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._s_up = 0.0  # S for increases
        self._s_down = 0.0  # S for decreases
        self._min_up = math.inf
        self._max_down = -math.inf

    def update(self, values: np.ndarray) -> list[DriftSignal]:
        """Feed a batch of scores; returns the detections in it (the test restarts after each)."""
        x = as_scores(values, self.name)
        signals: list[DriftSignal] = []
        start = 0
        while start < len(x):
            stop = min(len(x), start + self._chunk)
            hit = self._run(x[start:stop])
            if hit is None:
                start = stop
                continue
            offset, stat = hit
            signals.append(
                DriftSignal(
                    detector=self.name,
                    statistic=stat,
                    threshold=self.threshold,
                    index=self._seen + start + offset,
                )
            )
            self._restart()
            start += offset + 1
        self._seen += len(x)
        return signals

    def _run(self, x: np.ndarray) -> tuple[int, float] | None:
        """Advance over ``x``; stop at the first detection and return (its offset, statistic)."""
        k = self._n + np.arange(1, len(x) + 1, dtype=np.float64)
        mean = (self._n * self._mean + np.cumsum(x)) / k
        dev = x - mean
        a = self.alpha
        if a == 1.0:
            s_up = self._s_up + np.cumsum(dev - self.delta)
            s_down = self._s_down + np.cumsum(dev + self.delta)
        else:
            # S_t = a^(t+1) (S_-1 + sum_{j<=t} a^-(j+1) y_j): one cumsum instead of a loop.
            grow = np.power(a, -np.arange(1, len(x) + 1, dtype=np.float64))
            shrink = 1.0 / grow
            s_up = shrink * (self._s_up + np.cumsum(grow * (dev - self.delta)))
            s_down = shrink * (self._s_down + np.cumsum(grow * (dev + self.delta)))
        min_up = np.minimum(np.minimum.accumulate(s_up), self._min_up)
        max_down = np.maximum(np.maximum.accumulate(s_down), self._max_down)
        stat_up = s_up - min_up
        stat_down = max_down - s_down
        if self.direction == "up":
            stat = stat_up
        elif self.direction == "down":
            stat = stat_down
        else:
            stat = np.maximum(stat_up, stat_down)
        fired = (stat > self.threshold) & (k >= self.min_instances)
        if fired.any():
            t = int(np.argmax(fired))
            return t, float(stat[t])
        self._n = int(k[-1])
        self._mean = float(mean[-1])
        self._s_up, self._s_down = float(s_up[-1]), float(s_down[-1])
        self._min_up, self._max_down = float(min_up[-1]), float(max_down[-1])
        return None

    def __repr__(self) -> str:
        return params_repr(self, ("delta", "threshold", "alpha", "min_instances", "direction"))
