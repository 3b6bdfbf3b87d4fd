"""Built-in detectors: numpy only, vectorised over samples (and features where possible).

They follow the scikit-learn conventions the wrapper relies on: constructor arguments
stored unchanged, fitted attributes ending in ``_``, ``decision_function`` higher =
more anomalous.
"""

from __future__ import annotations

from collections.abc import Iterator
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
        # Columns of huge or subnormal magnitude are binned on a power-of-two rescaled copy
        # (exact), so that the range and the bin width are finite and positive for any
        # finite input; ordinary columns are left untouched, bit for bit.
        self.scale_exponents_ = _hbos_scale_exponents(lows, highs)
        if self.scale_exponents_ is not None:
            X = np.ldexp(X, self.scale_exponents_)
            lows, highs = X.min(axis=0), X.max(axis=0)
        widths = _hbos_widths(lows, highs, self.n_bins)
        self.lows_, self.widths_ = lows, widths
        self.n_features_in_ = n_features
        # Block by block, so that every temporary stays in the CPU cache: on 2,000,000 x 20
        # rows whole-matrix temporaries (320 MB each) made the fit memory-bound. The bins
        # are kept in the smallest integer type that holds them, for the scores below.
        cells = n_features * self.n_bins
        counts = np.zeros(cells, dtype=np.intp)
        kept = np.empty(X.shape, dtype=np.min_scalar_type(cells - 1))
        for rows in _blocks(X.shape[0], n_features):
            position = X[rows] - lows
            position /= widths
            flat = self._flat_bins(position)
            counts += np.bincount(flat.ravel(), minlength=cells)
            kept[rows] = flat
        counts = counts.reshape(n_features, self.n_bins)
        self.heights_ = counts / counts.max(axis=1, keepdims=True)
        # Each bin's score contribution, once: scoring becomes a table lookup. The training
        # rows' bins are already known, so their scores come for free (a stream refits
        # every window; rescoring the window was a third of each refit).
        self.bin_scores_ = -np.log(self.heights_ + self.alpha)
        table = self.bin_scores_.ravel()
        scores = np.empty(X.shape[0])
        for rows in _blocks(X.shape[0], n_features):
            scores[rows] = table.take(kept[rows].astype(np.intp)).sum(axis=1)
        self.decision_scores_ = scores
        return self

    def _flat_bins(self, position: np.ndarray) -> np.ndarray:
        """Each value's bin as a flat index into the (features x bins) table.

        ``position`` (rows x features, in bin widths from each feature's low edge) is
        overwritten: no more temporaries than needed.
        """
        np.floor(position, out=position)
        np.clip(position, 0, self.n_bins - 1, out=position)
        bins = position.astype(np.intp)
        bins += np.arange(bins.shape[1], dtype=np.intp) * self.n_bins
        return bins

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        exponents = getattr(self, "scale_exponents_", None)  # absent in models pickled before it
        table = getattr(self, "bin_scores_", None)
        if table is None:  # a model pickled before bin_scores_ existed
            table = -np.log(self.heights_ + self.alpha)
        table = table.ravel()
        out_of_range = -np.log(self.alpha)
        scores = np.empty(X.shape[0])
        # Block by block (see fit), in place, and one flat lookup: the same floats to the bit
        # as the whole-matrix expression.
        for rows in _blocks(X.shape[0], X.shape[1]):
            with np.errstate(over="ignore"):
                # A value far beyond a huge (or tiny) training range may overflow to +-inf
                # here: still ordered, never NaN (lows_ and widths_ are finite, widths_ > 0),
                # so it lands outside the histogram.
                block = X[rows] if exponents is None else np.ldexp(X[rows], exponents)
                position = block - self.lows_
                position /= self.widths_
            outside = position < -self.tol
            outside |= position > self.n_bins + self.tol
            contributions = table.take(self._flat_bins(position))
            # A value beyond the histogram (by more than tol bins) falls in an empty bin.
            contributions[outside] = out_of_range
            scores[rows] = contributions.sum(axis=1)
        return scores


def _blocks(n_rows: int, n_features: int, cells: int = 1 << 16) -> Iterator[slice]:
    """Row slices of about ``cells`` values each (at least one row): a float64 block of 512 kB."""
    step = max(1, cells // max(n_features, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


#: HBOS rescales a column whose largest magnitude reaches 2**_HUGE_EXP, so that its range
#: (at most twice that) stays below the largest float64 (about 2**1024).
_HUGE_EXP = 1021
#: ... and a varying column whose magnitudes all stay below 2**_TINY_EXP, whose bin width
#: (range / n_bins) would lose its precision to subnormals, or underflow to 0.
_TINY_EXP = -960


def _hbos_scale_exponents(lows: np.ndarray, highs: np.ndarray) -> np.ndarray | None:
    """Per column, the power of two that brings extreme magnitudes into a safe range, or None.

    None when no column needs it: the common case then scores without an extra pass.
    Scaling by a power of two is exact (bar values that fall to subnormals next to huge
    ones, which are lost in the bin width anyway), so bins are the same as on the
    original values wherever those could be computed.
    """
    _, exponent = np.frexp(np.maximum(np.abs(lows), np.abs(highs)))  # max |x| < 2**exponent
    huge = exponent > _HUGE_EXP
    tiny = (exponent < _TINY_EXP) & (highs > lows)
    if not (huge.any() or tiny.any()):
        return None
    return np.where(huge, _HUGE_EXP - exponent, np.where(tiny, -exponent, 0)).astype(np.int64)


def _hbos_widths(lows: np.ndarray, highs: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin widths: finite and positive for every column of a (rescaled) matrix.

    A constant column gets a histogram one unit wide, as it always did, or ``n_bins``
    float steps wide where one unit is below the resolution of its value (above 2**53:
    nanosecond timestamps, int64 ids); its training rows all share the first bin, so it
    adds the same amount to every training row and moves no ranking.
    """
    constant = highs <= lows
    unit = np.maximum(1.0, n_bins * np.spacing(np.abs(lows)))
    return np.where(constant, unit, highs - lows) / n_bins


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
        self.scale_exponents_ = None
        self.median_, self.scale_ = self._location_scale(X)
        if not (np.isfinite(self.median_).all() and np.isfinite(self.scale_).all()):
            # Near the float64 limit, the mean of the two middle values (an even number of
            # rows) and |x - median| overflow: such columns are redone rescaled by a power of
            # two. z-scores do not change with the unit, so the rescaled statistics are kept.
            self.scale_exponents_ = _mad_scale_exponents(X)
            self.median_, self.scale_ = self._location_scale(np.ldexp(X, self.scale_exponents_))
        self.n_features_in_ = X.shape[1]
        return self

    @staticmethod
    def _location_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and robust scale per column; the scale is positive (finite unless X overflows)."""
        with np.errstate(over="ignore", invalid="ignore"):
            median = np.median(X, axis=0)
            deviation = np.abs(X - median)
            scale = _MAD_TO_STD * np.median(deviation, axis=0)
            fallback = 1.2533 * _safe_mean(deviation)  # mean absolute deviation -> std for a normal
        scale = np.where(scale > 0, scale, fallback)
        return median, np.where(scale > 0, scale, 1.0)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        exponents = getattr(self, "scale_exponents_", None)  # absent in models pickled before it
        # A z-score may overflow to inf (a huge value against a tiny MAD), never to NaN
        # (scale_ is finite and positive); the aggregate is capped below.
        with np.errstate(over="ignore"):
            if exponents is not None:
                X = np.ldexp(X, exponents)
            z = np.abs((X - self.median_) / self.scale_)
            if self.aggregate == "mean":
                scores = z.mean(axis=1)
            elif self.aggregate == "l2":
                scores = np.sqrt(np.einsum("ij,ij->i", z, z))
            else:
                scores = z.max(axis=1)
        # Past SCORE_CAP a row is beyond any threshold anyway; a finite score keeps
        # thresholds, ensembles and JSON working (cheap: one value per row).
        return np.minimum(scores, SCORE_CAP)


#: The largest score RobustZScore gives: z-scores this far out (or overflowing) are all
#: equally anomalous, and the room left below the float64 limit lets an ensemble add up
#: many such scores without overflowing.
SCORE_CAP = 1e300

#: RobustZScore rescales a column whose largest magnitude reaches 2**_MAD_HUGE_EXP, so that
#: the differences and two-value means it computes stay below the float64 limit (~2**1024).
_MAD_HUGE_EXP = 1020


def _mad_scale_exponents(X: np.ndarray) -> np.ndarray:
    """Per column, the power of two that brings huge magnitudes below 2**_MAD_HUGE_EXP (else 0)."""
    _, exponent = np.frexp(np.abs(X).max(axis=0))  # max |x| < 2**exponent
    return np.where(exponent > _MAD_HUGE_EXP, _MAD_HUGE_EXP - exponent, 0).astype(np.int64)


def _safe_mean(values: np.ndarray) -> np.ndarray:
    """Column means of non-negative values, without the overflow a plain sum of huge values hits."""
    with np.errstate(over="ignore"):
        mean = values.mean(axis=0)
    overflowed = ~np.isfinite(mean)
    if overflowed.any():
        mean[overflowed] = (values[:, overflowed] / values.shape[0]).sum(axis=0)
    return mean


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
        self.scale_ = _power_of_two_scale(X)
        X = X / self.scale_
        self.location_ = X.mean(axis=0)
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        if self.shrinkage:
            target = np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
            cov = (1.0 - self.shrinkage) * cov + self.shrinkage * target
        self.precision_ = np.linalg.pinv(cov, hermitian=True)
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        scale = getattr(self, "scale_", 1.0)  # models saved before scale_ existed were fitted unscaled
        centred = np.asarray(X, dtype=np.float64) / scale - self.location_
        squared = np.einsum("ij,jk,ik->i", centred, self.precision_, centred, optimize=True)
        return np.sqrt(np.maximum(squared, 0.0))


def _power_of_two_scale(X: np.ndarray) -> float:
    """One power of two that brings ``X`` near 1, so the covariance of values near 1e308 does not overflow.

    The Mahalanobis distance is unchanged by one common scale (shrinkage included), and dividing
    by a power of two is exact in binary floating point: data of ordinary size scores as before.
    """
    largest = float(np.max(np.abs(X))) if X.size else 0.0
    if not np.isfinite(largest) or largest == 0.0:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(largest)[1]) - 1))
