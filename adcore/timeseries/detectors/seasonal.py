"""Seasonal residual raw score: how far a value is from the same time on the previous days.

A metric with a daily cycle hides anomalies that stay inside the day's range (a peak that
comes out lower, a night that does not go quiet): a shape detector with a short window and
a range check both miss them, the value one period earlier does not. The period is declared
(``period`` records) or detected from the warm-up: the records per day implied by the
median time step, kept when the warm-up's autocorrelation at that lag is at least
``min_acf`` (and it holds two periods); otherwise the series is not seasonal and the raw
score is 0. The raw score is ``|v - median(v[t - P], v[t - 2P], v[t - 3P])|`` over the days
the history holds (the median keeps yesterday's anomaly from echoing today). Memory: one
ring of ``3P`` floats (864 for 5-minute data).
"""

from __future__ import annotations

import numpy as np

from adcore.timeseries.detectors.base import RawScorer, Ring, as_series, positive_int

DAY_NS = 86_400 * 10**9
DAYS = 3


def _step_ns(timestamps: np.ndarray | None) -> float | None:
    if timestamps is None or len(timestamps) < 2:
        return None
    t = np.asarray(timestamps)
    ns = t.astype("datetime64[ns]").astype(np.int64) if t.dtype.kind == "M" else t.astype(np.int64)
    steps = np.diff(ns)
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else None


def autocorrelation(x: np.ndarray, lag: int) -> float:
    """Sample autocorrelation of ``x`` at ``lag`` (0 for a constant series)."""
    d = x - x.mean()
    denom = float(np.dot(d, d))
    if denom == 0 or lag >= x.size:
        return 0.0
    return float(np.dot(d[:-lag], d[lag:]) / denom)


class SeasonalResidual(RawScorer):
    """Distance of each value from the median of the same phase on the previous days."""

    def __init__(self, *, period: int | None = None, min_acf: float = 0.5, max_period: int = 2016) -> None:
        self.declared = None if period is None else positive_int("period", period, 2)
        self.min_acf = float(min_acf)
        self.max_period = positive_int("max_period", max_period, 2)
        self.period = 0  # 0: not seasonal
        self.buffer: Ring | None = None

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values, "warm-up")
        period = self.declared
        if period is None:
            step = _step_ns(timestamps)
            if step:
                candidate = round(DAY_NS / step)
                fits = 2 <= candidate <= self.max_period and x.size >= 2 * candidate
                if fits and autocorrelation(x, candidate) >= self.min_acf:
                    period = candidate
        self.period = period or 0
        if self.period:
            self.buffer = Ring(DAYS * self.period)
        return self.batch(x)

    def step(self, value: float, timestamp: object = None) -> float:
        if self.buffer is None:
            return 0.0
        h = self.buffer.view()
        p = self.period
        score = 0.0
        if h.size >= p:
            past = h[h.size - p :: -p][:DAYS]  # v[t-P], v[t-2P], ... as far as held
            score = abs(value - float(np.median(past)))
        self.buffer.push(value)
        return score

    def batch(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        out = np.zeros(x.size)
        if self.buffer is None or x.size == 0:
            return out
        p = self.period
        prior = self.buffer.view().copy()
        joined = np.concatenate((prior, x))
        idx = prior.size + np.arange(x.size)  # position of each value in joined
        # the history each value sees: the ring's content, at most DAYS * P values back
        lo = np.maximum(0, idx - DAYS * p)
        lags = idx[:, None] - p * np.arange(1, DAYS + 1)[None, :]
        held = lags >= lo[:, None]
        past = np.where(held, joined[np.clip(lags, 0, None)], np.nan)
        counts = held.sum(axis=1)
        ok = counts > 0
        if ok.any():
            # median of 1, 2 or 3 held values, computed as np.median would on each row
            med = np.empty(x.size)
            for c in (1, 2, 3):
                rows = counts == c
                if rows.any():
                    med[rows] = np.median(past[rows][:, :c], axis=1)
            out[ok] = np.abs(x[ok] - med[ok])
        self.buffer.extend(x)
        return out

    def state_nbytes(self) -> int:
        return (self.buffer.nbytes if self.buffer is not None else 0) + 16
