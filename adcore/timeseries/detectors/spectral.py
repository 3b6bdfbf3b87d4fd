"""Spectral residual raw score (Ren et al. 2019, "Time-Series Anomaly Detection Service at
Microsoft", KDD): saliency of the latest value in the last ``window`` values.

The log amplitude spectrum of a window minus its local average (the "spectral residual")
keeps what is unexpected in the series; transformed back, it gives a saliency map whose
peaks are anomalies. The paper's causal form is used: ``extend`` values extrapolated from
the recent slope are appended so the latest real value is not at the window's edge, and
the raw score is the latest value's saliency relative to the mean saliency of the
``local`` values before it. Memory: one ring of ``window`` floats.
"""

from __future__ import annotations

import numpy as np

from adcore.timeseries.detectors.base import RawScorer, Ring, as_series, positive_int


def _average_filter(values: np.ndarray, q: int) -> np.ndarray:
    """Moving average of width ``q`` along the last axis (shorter at the start)."""
    c = np.cumsum(values, axis=-1)
    out = c.copy()
    out[..., q:] = c[..., q:] - c[..., :-q]
    width = np.minimum(np.arange(1, values.shape[-1] + 1), q)
    return out / width


def saliency_last(windows: np.ndarray, *, extend: int, local: int, q: int = 3) -> np.ndarray:
    """Spectral-residual score of the last value of each row of ``windows``."""
    w = windows.shape[-1]
    m = min(5, w - 1)
    idx = np.arange(w - m - 1, w - 1)
    # mean slope from the last value back to each of the m before it
    slopes = (windows[..., -1:] - windows[..., idx]) / (w - 1 - idx)
    guess = windows[..., w - m : w - m + 1] + slopes.mean(axis=-1, keepdims=True) * m
    padded = np.concatenate((windows, np.repeat(guess, extend, axis=-1)), axis=-1)
    spectrum = np.fft.fft(padded, axis=-1)
    amplitude = np.abs(spectrum)
    log_amp = np.log(np.maximum(amplitude, 1e-12))
    residual = log_amp - _average_filter(log_amp, q)
    phase = spectrum / np.maximum(amplitude, 1e-12)
    sal = np.abs(np.fft.ifft(np.exp(residual) * phase, axis=-1))[..., :w]
    ref = sal[..., w - 1 - local : w - 1].mean(axis=-1)
    return (sal[..., w - 1] - ref) / np.maximum(ref, 1e-12)


class SpectralResidual(RawScorer):
    """Saliency of each new value within the last ``window`` values."""

    def __init__(self, *, window: int = 64, extend: int = 5, local: int = 21) -> None:
        self.window = positive_int("window", window, 8)
        self.extend = positive_int("extend", extend)
        self.local = min(positive_int("local", local), self.window - 1)
        self.buffer = Ring(self.window)

    def step(self, value: float, timestamp: object = None) -> float:
        self.buffer.push(value)
        h = self.buffer.view()
        if h.size < self.window:
            return 0.0
        return float(saliency_last(h[None, :], extend=self.extend, local=self.local)[0])

    def batch(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        x = as_series(values)
        prior = self.buffer.view().copy()
        joined = np.concatenate((prior, x))
        out = np.zeros(x.size)
        if joined.size >= self.window:
            rows = np.lib.stride_tricks.sliding_window_view(joined, self.window)
            rows = rows[max(0, prior.size - self.window + 1) :]
            scores = np.concatenate(
                [
                    saliency_last(rows[i : i + 4096], extend=self.extend, local=self.local)
                    for i in range(0, rows.shape[0], 4096)
                ]
            )
            out[x.size - scores.size :] = scores
        self.buffer.extend(x)
        return out

    def state_nbytes(self) -> int:
        return self.buffer.nbytes
