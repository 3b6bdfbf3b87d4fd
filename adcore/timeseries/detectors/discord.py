"""Discord raw score: distance from the latest subsequence to its nearest neighbour in the past.

This is the left matrix profile (Yeh et al. 2016; Zhu et al. 2017 for the "left" causal
form) restricted to a bounded history: the last ``length`` values form a subsequence whose
distance to every earlier subsequence of the last ``history`` records is computed, and the
smallest is the raw score. A pattern never seen before (a discord) scores high; a repeated
one, even a large one, scores low. Subsequences overlapping the current one by more than
half (trivial matches) are excluded. ``normalize="z"`` compares shapes (z-normalised
windows, as the matrix profile literature does), ``"mean"`` shapes and amplitudes (each
window minus its mean), ``"none"`` also sees level changes (the best on NAB).

Distances are computed directly, ``sum((a - b)**2)`` per pair, so the point-by-point and the
chunked vectorised paths agree to the bit. Memory: one ring of ``history + length`` floats.
"""

from __future__ import annotations

import numpy as np

from adcore.errors import ParameterError
from adcore.timeseries.detectors.base import RawScorer, Ring, as_series, positive_int

_MODES = ("none", "mean", "z")


def _normalise(windows: np.ndarray, min_std: float, mode: str) -> np.ndarray:
    mean = windows.mean(axis=-1, keepdims=True)
    if mode == "mean":
        return windows - mean
    std = np.maximum(windows.std(axis=-1, keepdims=True), min_std)
    return (windows - mean) / std


class Discord(RawScorer):
    """Left nearest-neighbour distance of the last ``length`` values within ``history``."""

    def __init__(
        self,
        *,
        length: int = 8,
        history: int = 1000,
        normalize: str = "none",
        min_std: float = 0.05,
        chunk: int = 256,
    ) -> None:
        self.length = positive_int("length", length, 2)
        self.history = positive_int("history", history, 2 * self.length)
        if normalize not in _MODES:
            raise ParameterError(f"normalize must be one of {', '.join(_MODES)}, not {normalize!r}")
        self.normalize = normalize
        self.min_std = float(min_std)
        self.chunk = positive_int("chunk", chunk)
        self.exclusion = self.length // 2
        self.buffer = Ring(self.history + self.length)
        self._scale: float | None = None  # the warm-up's deviation: floors a window's (z mode)

    def _prepare(self, windows: np.ndarray) -> np.ndarray:
        if self.normalize == "none":
            return windows
        scale = self._scale if self._scale is not None else 1.0
        return _normalise(windows, self.min_std * scale, self.normalize)

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values, "warm-up")
        # a flat window's z-normalisation would blow noise up: the floor follows the series' scale
        self._scale = float(np.std(x)) or 1.0
        return self.batch(x)

    def step(self, value: float, timestamp: object = None) -> float:
        self.buffer.push(value)
        h = self.buffer.view()
        m = self.length
        # candidates end at least `exclusion` records before the current subsequence's end
        n_cand = h.size - m + 1 - self.exclusion - 1
        if n_cand < 1:
            return 0.0
        windows = np.lib.stride_tricks.sliding_window_view(h, m)
        prepared = self._prepare(windows)
        query = prepared[-1]
        cand = prepared[:n_cand]
        return float(np.sqrt(np.min(((cand - query) ** 2).sum(axis=1)) / m))

    def batch(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        n = x.size
        out = np.zeros(n)
        if n == 0:
            return out
        prior = self.buffer.view().copy()
        joined = np.concatenate((prior, x))
        m, cap = self.length, self.buffer.size
        windows = np.lib.stride_tricks.sliding_window_view(joined, m)
        prepared = self._prepare(windows) if joined.size >= m else windows
        for c0 in range(0, n, self.chunk):
            c1 = min(n, c0 + self.chunk)
            ends = prior.size + np.arange(c0, c1)  # index in joined of each query's last value
            starts = np.maximum(0, ends - cap + 1)  # the ring's oldest value at that time
            q_idx = ends - m + 1  # window index of each query
            valid = q_idx >= 0
            lo = starts  # first candidate window index (its first value is in the ring)
            hi = q_idx - self.exclusion - 1  # last candidate window index, inclusive
            if not valid.any():
                continue
            w_lo = int(lo[valid].min())
            w_hi = int(hi[valid].max())
            if w_hi < w_lo:
                continue
            cand = prepared[w_lo : w_hi + 1]
            queries = prepared[np.clip(q_idx, 0, None)]
            d = ((cand[None, :, :] - queries[:, None, :]) ** 2).sum(axis=2)
            idx = np.arange(w_lo, w_hi + 1)
            mask = (idx[None, :] >= lo[:, None]) & (idx[None, :] <= hi[:, None]) & valid[:, None]
            d = np.where(mask, d, np.inf)
            best = d.min(axis=1)
            ok = np.isfinite(best)
            out[c0:c1][ok] = np.sqrt(best[ok] / m)
        self.buffer.extend(x)
        return out

    def state_nbytes(self) -> int:
        return self.buffer.nbytes + 8
