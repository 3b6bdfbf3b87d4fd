"""New-extreme detector: a value beyond everything seen so far, by a margin, is an anomaly.

NAB's HTM detector adds this "spatial anomaly" check to its likelihood (``spatialTolerance``
0.05): a sequence model learns shapes and can be slow to flag a plain out-of-range value,
which any operator would call an anomaly. Score 1 when the value exceeds the running
maximum (or falls below the running minimum) by ``tolerance`` times the running range,
0 otherwise; the range then includes the value. State: two floats.
"""

from __future__ import annotations

import numpy as np

from adcore.errors import ParameterError
from adcore.timeseries.detectors.base import as_series


class NewExtreme:
    """1.0 for a value outside ``[min - t * range, max + t * range]`` of all earlier values."""

    def __init__(self, *, tolerance: float = 0.05) -> None:
        if not tolerance >= 0:
            raise ParameterError(f"tolerance must be at least 0, not {tolerance!r}")
        self.tolerance = float(tolerance)
        self.low = np.inf
        self.high = -np.inf
        self.name = "extreme"

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> NewExtreme:
        x = as_series(values, "warm-up")
        if x.size:
            self.low = min(self.low, float(x.min()))
            self.high = max(self.high, float(x.max()))
        return self

    def update_score(self, value: float, timestamp: object = None) -> float:
        v = float(value)
        score = 0.0
        if np.isfinite(self.low):
            margin = self.tolerance * (self.high - self.low)
            if v > self.high + margin or v < self.low - margin:
                score = 1.0
        self.low, self.high = min(self.low, v), max(self.high, v)
        return score

    def score_series(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        if x.size == 0:
            return np.zeros(0)
        # running extremes of everything before each value
        low = np.minimum.accumulate(np.concatenate(([self.low], x)))[:-1]
        high = np.maximum.accumulate(np.concatenate(([self.high], x)))[:-1]
        with np.errstate(invalid="ignore"):
            margin = self.tolerance * (high - low)
            out = ((x > high + margin) | (x < low - margin)) & np.isfinite(low)
        self.low, self.high = min(self.low, float(x.min())), max(self.high, float(x.max()))
        return out.astype(np.float64)

    def state_nbytes(self) -> int:
        return 16
