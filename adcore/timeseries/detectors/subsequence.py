"""``Sub-<detector>``: any registered tabular detector as a causal time-series detector.

TSB-AD (Liu and Paparrizos, NeurIPS 2024) finds subsequence detectors ahead of point-wise
ones on univariate series. Each record becomes the vector of the last ``length`` values,
optionally differenced (``diff``: level-free shapes) and normalised per window
(``normalize``: subtract the window's mean). The tabular detector (``core:hbos``,
``core:mad``, ``pyod:knn``...) is fitted once on the warm-up's windows; later windows are
scored by it, and its raw scores are expressed as robust z-scores against its scores on
the warm-up windows, so one threshold works across series. The model is fixed after the
warm-up; the state per series is one ring of ``length + 1`` values (plus the model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adcore.errors import DataError
from adcore.timeseries.detectors.base import RawScorer, Ring, as_series, positive_int

_MAD_TO_STD = 1.4826


class Subsequence(RawScorer):
    """Sliding-window rows scored by a tabular detector fitted on the warm-up."""

    def __init__(
        self,
        detector: str = "core:hbos",
        *,
        length: int = 16,
        diff: bool = False,
        normalize: bool = True,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.detector_name = detector
        self.params = dict(params or {})
        self.length = positive_int("length", length)
        self.diff = bool(diff)
        self.normalize = bool(normalize)
        # differencing needs one more value than the window
        self.buffer = Ring(self.length + int(self.diff))
        self.model: Any = None
        self.centre, self.scale = 0.0, 1.0
        self.level, self.spread = 0.0, 1.0

    def _rows(self, joined: np.ndarray) -> np.ndarray:
        """Feature rows for every complete window of ``joined`` (values oldest first)."""
        need = self.length + int(self.diff)
        windows = np.lib.stride_tricks.sliding_window_view(joined, need)
        rows = np.diff(windows, axis=1) if self.diff else windows
        rows = (rows - self.level) / self.spread if not self.diff else rows / self.spread
        if self.normalize:
            rows = rows - rows.mean(axis=1, keepdims=True)
        return rows

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        from adcore.services.spec import create_detector

        x = as_series(values, "warm-up")
        need = self.length + int(self.diff)
        if x.size < need + 1:
            raise DataError(f"the warm-up needs more than {need} values for windows of {self.length}")
        self.level = float(np.mean(x))
        self.spread = float(np.std(np.diff(x) if self.diff else x)) or 1.0
        rows = self._rows(x)
        self.model = create_detector(self.detector_name, **self.params)
        self.model.fit(rows)
        train = np.asarray(self.model.decision_function(rows), dtype=np.float64)
        self.centre = float(np.median(train))
        mad = _MAD_TO_STD * float(np.median(np.abs(train - self.centre)))
        self.scale = mad if mad > 0 else (float(np.std(train)) or 1.0)
        raw = np.zeros(x.size)
        raw[need - 1 :] = (train - self.centre) / self.scale
        self.buffer.extend(x)
        return raw

    def step(self, value: float, timestamp: object = None) -> float:
        self.buffer.push(value)
        h = self.buffer.view()
        if h.size < self.buffer.size:
            return 0.0
        score = np.asarray(self.model.decision_function(self._rows(h)), dtype=np.float64)
        return float((score[0] - self.centre) / self.scale)

    def batch(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        prior = self.buffer.view().copy()
        joined = np.concatenate((prior, x))
        need = self.buffer.size
        out = np.zeros(x.size)
        if joined.size >= need:
            rows = self._rows(joined)  # row j ends at joined[j + need - 1]
            first = max(0, prior.size - need + 1)  # first row ending inside x
            scores = np.asarray(self.model.decision_function(rows[first:]), dtype=np.float64)
            out[x.size - scores.size :] = (scores - self.centre) / self.scale
        self.buffer.extend(x)
        return out

    def state_nbytes(self) -> int:
        return self.buffer.nbytes + 6 * 8
