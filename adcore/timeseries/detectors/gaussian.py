"""Rolling Gaussian raw score: how many standard deviations a value lies from the recent ones.

The simplest causal detector worth having: the value (or its change from the previous value,
``diff=True``, which turns level shifts into spikes) is compared with the mean and standard
deviation of the previous ``window`` values. Memory: one ring buffer of ``window`` floats.
"""

from __future__ import annotations

import numpy as np

from adcore.timeseries.detectors.base import RawScorer, Ring, as_series, positive_int


class RollingGaussian(RawScorer):
    """``|v - mean| / std`` of each value ``v`` against the previous ``window`` values."""

    def __init__(self, *, window: int = 288, diff: bool = False, min_std: float = 1e-9) -> None:
        self.buffer = Ring(positive_int("window", window, 2))
        self.diff = bool(diff)
        self.min_std = float(min_std)
        self.last: float | None = None

    def _transform(self, value: float) -> float | None:
        if not self.diff:
            return value
        previous, self.last = self.last, value
        return None if previous is None else value - previous

    def step(self, value: float, timestamp: object = None) -> float:
        v = self._transform(value)
        if v is None:
            return 0.0
        h = self.buffer.view()
        score = 0.0
        if h.size >= 2:
            score = abs(v - float(np.mean(h))) / max(float(np.std(h)), self.min_std)
        self.buffer.push(v)
        return score

    def batch(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        n = x.size
        out = np.zeros(n)
        if n == 0:
            return out
        if self.diff:
            first = 0.0 if self.last is None else self.last
            v = np.diff(np.concatenate(([first], x)))
            start = 1 if self.last is None else 0  # the very first value has no change
            self.last = float(x[-1])
        else:
            v, start = x, 0
        v = v[start:]
        prior = self.buffer.view().copy()
        w = self.buffer.size
        joined = np.concatenate((prior, v))
        # scored one by one while the buffer is not yet full, then all at once
        i = 0
        while i < v.size and prior.size + i < w:
            h = joined[: prior.size + i]
            if h.size >= 2:
                out[start + i] = abs(v[i] - float(np.mean(h))) / max(float(np.std(h)), self.min_std)
            i += 1
        if i < v.size:
            windows = np.lib.stride_tricks.sliding_window_view(joined[:-1], w)[prior.size + i - w :]
            mean = windows.mean(axis=1)
            std = np.maximum(windows.std(axis=1), self.min_std)
            out[start + i :] = np.abs(v[i:] - mean) / std
        self.buffer.extend(v)
        return out

    def state_nbytes(self) -> int:
        return self.buffer.nbytes + 8
