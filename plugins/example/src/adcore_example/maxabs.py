"""The MaxAbs detector: how many robust standard deviations a row's most extreme feature lies out."""

from __future__ import annotations

import numpy as np

_MAD_TO_STD = 1.4826  # the MAD of normal data times this is its standard deviation


class MaxAbs:
    """Largest robust z-score over the features.

    Median and MAD (median absolute deviation) are barely moved by the anomalies they
    are meant to find, unlike mean and standard deviation, so one pass over clean-ish
    data gives a robust reference. Scores are ``max_j |x_j - median_j| / MAD_j``: higher
    means more anomalous, and a row is judged by its single worst feature.
    """

    def __init__(self, epsilon: float = 1e-12, scale: bool = True) -> None:
        self.epsilon = epsilon
        self.scale = scale

    def fit(self, X: np.ndarray, y: object = None) -> MaxAbs:
        X = np.asarray(X, dtype=np.float64)
        self.median_ = np.median(X, axis=0)
        mad = np.median(np.abs(X - self.median_), axis=0)
        self.mad_ = (_MAD_TO_STD if self.scale else 1.0) * mad + self.epsilon
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.abs((np.asarray(X, dtype=np.float64) - self.median_) / self.mad_).max(axis=1)
