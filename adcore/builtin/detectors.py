"""Built-in detectors: numpy only, vectorised over samples (and features where possible).

They follow the scikit-learn conventions the wrapper relies on: constructor arguments
stored unchanged, fitted attributes ending in ``_``, ``decision_function`` higher =
more anomalous.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

_MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HBOSParams(_Params):
    n_bins: int = Field(10, ge=2, le=10_000, description="Equal-width bins per feature.")
    alpha: float = Field(
        0.1, gt=0, le=1, description="Added to each normalised bin height so empty bins give a finite score."
    )
    tol: float = Field(
        0.5, ge=0, description="Values within tol bin widths outside the training range use the edge bin."
    )


class HBOS:
    """Histogram-based outlier score (Goldstein & Dengel, 2012).

    Each feature gets an equal-width histogram normalised to a maximum height of 1; a
    sample's score is the sum over features of ``-log(height + alpha)``, so rare bins
    and values far outside the training range score high. Features are treated as
    independent, which makes it very fast and a strong baseline on many datasets.
    """

    def __init__(self, n_bins: int = 10, alpha: float = 0.1, tol: float = 0.5) -> None:
        self.n_bins = n_bins
        self.alpha = alpha
        self.tol = tol

    def fit(self, X: np.ndarray, y: object = None) -> HBOS:
        X = np.asarray(X, dtype=np.float64)
        n_features = X.shape[1]
        lows = X.min(axis=0)
        highs = X.max(axis=0)
        constant = highs <= lows
        highs = np.where(constant, lows + 1.0, highs)
        widths = (highs - lows) / self.n_bins
        idx = self._bin_index(X, lows, widths)
        flat = (idx + np.arange(n_features) * self.n_bins).ravel()
        counts = np.bincount(flat, minlength=n_features * self.n_bins).reshape(n_features, self.n_bins)
        self.heights_ = counts / counts.max(axis=1, keepdims=True)
        self.lows_, self.widths_ = lows, widths
        self.n_features_in_ = n_features
        # Each bin's score contribution, once: scoring becomes a table lookup. The training
        # rows' bins are already known, so their scores come for free (a stream refits
        # every window; rescoring the window was a third of each refit).
        self.bin_scores_ = -np.log(self.heights_ + self.alpha)
        self.decision_scores_ = np.take_along_axis(self.bin_scores_.T, idx, axis=0).sum(axis=1)
        return self

    def _bin_index(self, X: np.ndarray, lows: np.ndarray, widths: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((X - lows) / widths), 0, self.n_bins - 1).astype(np.intp)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        position = (X - self.lows_) / self.widths_
        idx = np.clip(np.floor(position), 0, self.n_bins - 1).astype(np.intp)
        outside = (position < -self.tol) | (position > self.n_bins + self.tol)
        table = getattr(self, "bin_scores_", None)
        if table is None:  # a model pickled before bin_scores_ existed
            table = -np.log(self.heights_ + self.alpha)
        contributions = np.take_along_axis(table.T, idx, axis=0)
        # A value beyond the histogram (by more than tol bins) falls in an empty bin.
        contributions = np.where(outside, -np.log(self.alpha), contributions)
        return contributions.sum(axis=1)


class RobustZScoreParams(_Params):
    aggregate: Literal["max", "mean", "l2"] = Field(
        "max", description="How per-feature |z| combine: the largest, their mean, or their Euclidean norm."
    )


class RobustZScore:
    """Robust z-score: distance from the median in units of the (scaled) MAD.

    Median and MAD are barely moved by the anomalies themselves, unlike mean and
    standard deviation. A feature whose MAD is zero falls back to its mean absolute
    deviation, then to 1, so constant features never divide by zero.
    """

    def __init__(self, aggregate: str = "max") -> None:
        self.aggregate = aggregate

    def fit(self, X: np.ndarray, y: object = None) -> RobustZScore:
        X = np.asarray(X, dtype=np.float64)
        self.median_ = np.median(X, axis=0)
        deviation = np.abs(X - self.median_)
        scale = _MAD_TO_STD * np.median(deviation, axis=0)
        fallback = 1.2533 * deviation.mean(axis=0)  # mean absolute deviation -> std for a normal
        scale = np.where(scale > 0, scale, fallback)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        z = np.abs((np.asarray(X, dtype=np.float64) - self.median_) / self.scale_)
        if self.aggregate == "mean":
            return z.mean(axis=1)
        if self.aggregate == "l2":
            return np.sqrt(np.einsum("ij,ij->i", z, z))
        return z.max(axis=1)


class MahalanobisParams(_Params):
    shrinkage: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Blend of the covariance with its diagonal's mean (0 = sample covariance); "
        "raise it when features outnumber samples or are collinear.",
    )


class Mahalanobis:
    """Mahalanobis distance to the training mean.

    Captures correlated features that per-feature scores miss. The pseudo-inverse keeps
    it defined for singular covariances; ``shrinkage`` stabilises small samples.
    """

    def __init__(self, shrinkage: float = 0.0) -> None:
        self.shrinkage = shrinkage

    def fit(self, X: np.ndarray, y: object = None) -> Mahalanobis:
        X = np.asarray(X, dtype=np.float64)
        self.location_ = X.mean(axis=0)
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        if self.shrinkage:
            target = np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
            cov = (1.0 - self.shrinkage) * cov + self.shrinkage * target
        self.precision_ = np.linalg.pinv(cov, hermitian=True)
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        centred = np.asarray(X, dtype=np.float64) - self.location_
        squared = np.einsum("ij,jk,ik->i", centred, self.precision_, centred, optimize=True)
        return np.sqrt(np.maximum(squared, 0.0))
