"""The detector: any class with ``fit(X, y=None)`` and ``decision_function(X)`` (higher = more anomalous).

adcore's wrapper adds input validation, thresholds, labels, ``get_params``, pickling and
the CLI, so the class only does the maths. Follow scikit-learn's conventions: store
constructor arguments unchanged, name fitted attributes with a trailing ``_``.
"""

from __future__ import annotations

import numpy as np


class Centroid:
    """Minkowski distance to the training mean, each feature in units of its standard deviation."""

    def __init__(self, p: float = 2.0) -> None:
        self.p = p

    def fit(self, X: np.ndarray, y: object = None) -> Centroid:
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        z = np.abs((X - self.mean_) / self.scale_)
        return (z**self.p).sum(axis=1) ** (1.0 / self.p)
