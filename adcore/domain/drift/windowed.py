"""Window-versus-reference drift tests: two-sample Kolmogorov-Smirnov and the population stability index.

Both compare the most recent ``window`` values with a reference sample (the data the current
model was trained on). They share the buffering rules, kept in one base class so the two
cannot drift apart:

- a sliding buffer holds the last ``window`` values passed to ``update``;
- the test runs at most once per ``update`` call, only when the buffer is full and at least
  ``window // 2`` values arrived since the previous test: every test on an overlapping window
  is another chance of a false alarm, and a test per value would multiply them;
- without a reference, the first ``window`` values of the stream become it;
- after a detection the tested window becomes the new reference and the buffer restarts, so
  a drift is reported once rather than on every following batch (``reset`` overrides this).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adcore.domain.drift._common import (
    DriftSignal,
    as_batch,
    check_feature_names,
    check_float,
    check_int,
    check_width,
    params_repr,
)
from adcore.errors import DataError, SchemaMismatchError

_MIN_WINDOW = 10
_PSI_EPS = 1e-4  # floor for empty-bin proportions: keeps log(q/p) finite, caps one bin's weight


# --- Kolmogorov distribution -----------------------------------------------------------------

_K_ODD_SQ = ((2.0 * np.arange(1, 9) - 1.0) ** 2 * (np.pi**2 / 8.0))[:, None]  # (2k-1)^2 pi^2 / 8
_K_SQ = (2.0 * np.arange(1, 9) ** 2)[:, None]  # 2 k^2
_K_SIGN = np.where(np.arange(1, 9) % 2 == 1, 1.0, -1.0)[:, None]


def kolmogorov_sf(x: np.ndarray | float) -> np.ndarray:
    """P(K > x) for the limiting Kolmogorov distribution, vectorised, numpy only.

    Two series, each used where it converges fast (8 terms give double precision): the
    alternating ``2 sum (-1)^(k-1) exp(-2 k^2 x^2)`` for x >= 1 (no cancellation in the tail
    that p-values live in), and Jacobi's form ``1 - sqrt(2 pi)/x sum exp(-(2k-1)^2 pi^2/(8x^2))``
    of the CDF below 1, where the alternating series would need many terms.
    """
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    out = np.ones_like(x)
    big = x >= 1.0
    if big.any():
        xb = x[big]
        out[big] = 2.0 * (_K_SIGN * np.exp(-_K_SQ * xb**2)).sum(axis=0)
    small = (x > 0.0) & ~big
    if small.any():
        xs = x[small]
        cdf = math.sqrt(2.0 * math.pi) / xs * np.exp(-_K_ODD_SQ / xs**2).sum(axis=0)
        out[small] = 1.0 - cdf
    return np.clip(out, 0.0, 1.0)


def kolmogorov_isf(p: float) -> float:
    """The x with ``kolmogorov_sf(x) == p`` (bisection; only needed when a signal is built)."""
    lo, hi = 0.0, math.sqrt(math.log(2.0 / p) / 2.0) + 1.0  # sf(x) <= 2 exp(-2x^2) bounds the root
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if kolmogorov_sf(mid)[0] > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def ks_statistic(reference: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Two-sample KS distance per column of two ``(n, d)`` / ``(m, d)`` samples.

    The same quantity as evaluating both empirical CDFs with ``searchsorted(side='right')`` at
    every pooled value (scipy's ``ks_2samp``), computed for all columns at once: one stable
    argsort of the pooled sample per column gives, by cumulative counts, both CDFs at every
    pooled value; only the last of each run of tied values is a valid evaluation point.
    """
    n, m = len(reference), len(window)
    pooled = np.concatenate([reference, window], axis=0)
    order = np.argsort(pooled, axis=0, kind="stable")
    from_ref = order < n
    diff = np.abs(np.cumsum(from_ref, axis=0) / n - np.cumsum(~from_ref, axis=0) / m)
    ordered = np.take_along_axis(pooled, order, axis=0)
    run_end = np.ones(ordered.shape, dtype=bool)
    run_end[:-1] = ordered[1:] != ordered[:-1]
    return np.where(run_end, diff, 0.0).max(axis=0)


# --- shared buffering ------------------------------------------------------------------------


class _WindowedDrift:
    """The buffering and reference handling common to KS and PSI (see the module docstring)."""

    name = ""

    def __init__(self, reference: Any, window: int, feature_names: list[str] | None) -> None:
        self.window = check_int("window", window, minimum=_MIN_WINDOW)
        self.feature_names = check_feature_names(feature_names)
        self._seen = 0
        self.reset(reference)

    # The layout (1-D scores or n_features columns) comes from the reference, or from the first
    # batch when there is none; later batches must match it.
    def reset(self, reference: np.ndarray | None = None) -> None:
        """Compare against ``reference`` from now on (``None``: the next ``window`` values)."""
        self._ref: np.ndarray | None = None
        self._is_1d: bool | None = None
        self._n_features: int | None = None
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._since_test = 0
        self._buf = np.empty((0, 0))
        if reference is not None:
            ref = as_batch(reference, "reference")
            if len(ref) < 2:
                raise DataError(f"reference needs at least 2 rows, got {len(ref)}")
            self._init_layout(ref, "reference")
            self._set_reference(ref.reshape(len(ref), -1).copy())  # the caller may reuse its array

    def update(self, values: np.ndarray) -> list[DriftSignal]:
        """Buffer ``values``; test the window at most once (see the module docstring)."""
        arr = as_batch(values)
        if len(arr) == 0:
            return []
        if self._is_1d is None:
            self._init_layout(arr, "values")
        else:
            check_width(arr, self._n_features, self._is_1d, "values")
        x = arr.reshape(len(arr), -1)
        self._seen += len(x)
        if self._ref is None:
            take = x[: self.window - self._pending_n]
            self._pending.append(take.copy())
            self._pending_n += len(take)
            x = x[len(take) :]
            if self._pending_n == self.window:
                self._set_reference(np.concatenate(self._pending, axis=0))
                self._pending = []
        if len(x):
            self._buf = np.concatenate([self._buf, x[-self.window :]])[-self.window :]  # a copy, not a view
            self._since_test += len(x)
        if len(self._buf) < self.window or self._since_test < max(1, self.window // 2):
            return []
        self._since_test = 0
        signal = self._test(self._buf, self._seen - 1)
        if signal is None:
            return []
        self._set_reference(self._buf.copy())
        self._buf = self._buf[:0]
        return [signal]

    def _init_layout(self, arr: np.ndarray, what: str) -> None:
        self._is_1d = arr.ndim == 1
        self._n_features = 1 if arr.ndim == 1 else arr.shape[1]
        names = self.feature_names
        if names is not None and len(names) != self._n_features and not (self._is_1d and len(names) == 1):
            self._is_1d = self._n_features = None
            raise SchemaMismatchError(
                f"{what} has {arr.shape[1] if arr.ndim == 2 else 1} feature(s) but "
                f"{len(names)} feature_names were given"
            )
        self._buf = np.empty((0, self._n_features))

    def _feature(self, j: int) -> str | None:
        if self._is_1d:
            return None
        return self.feature_names[j] if self.feature_names else f"feature_{j}"

    def _set_reference(self, ref: np.ndarray) -> None:
        self._ref = ref

    def _test(self, window: np.ndarray, index: int) -> DriftSignal | None:
        raise NotImplementedError


# --- detectors -------------------------------------------------------------------------------


class KSDrift(_WindowedDrift):
    """Two-sample Kolmogorov-Smirnov test of the last ``window`` values against the reference.

    Distribution-free and sensitive to any change of shape (location, spread, modes), which is
    why it suits scores whose distribution is not known in advance. With 2-D
    input each feature is tested and the level is Bonferroni-corrected (``alpha / n_features``),
    so adding features does not add false alarms; the signal names the most drifted feature.
    p-values use the limiting Kolmogorov distribution at ``sqrt(n m / (n + m)) * D``.

    ``alpha`` is the level of each test, and a test runs every ``window // 2`` values on a
    stationary stream, so the false-alarm rate per value is about ``2 alpha / window``. Hence
    the small default: at 0.01 a stationary stream raises about 4 false drift events per
    100,000 values (one in four 20,000-value streams has one); at 1e-4 about 0.04.
    """

    name = "ks"

    def __init__(
        self,
        reference: np.ndarray | None = None,
        window: int = 500,
        alpha: float = 1e-4,
        feature_names: list[str] | None = None,
    ) -> None:
        self.alpha = check_float("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        super().__init__(reference, window, feature_names)

    def __repr__(self) -> str:
        return params_repr(self, ("window", "alpha", "feature_names"))

    def _test(self, window: np.ndarray, index: int) -> DriftSignal | None:
        ref = self._ref
        assert ref is not None
        stat = ks_statistic(ref, window)
        scale = math.sqrt(len(ref) * len(window) / (len(ref) + len(window)))
        p = kolmogorov_sf(scale * stat)
        d = stat.shape[0]
        level = self.alpha / d
        j = int(np.argmax(stat))  # same sample sizes for every feature: largest D is smallest p
        if not p[j] < level:
            return None
        return DriftSignal(
            detector=self.name,
            statistic=float(stat[j]),
            threshold=kolmogorov_isf(level) / scale,
            index=index,
            p_value=min(1.0, float(p[j]) * d),
            feature=self._feature(j),
        )


class PSIDrift(_WindowedDrift):
    """Population stability index of the last ``window`` values against the reference.

    PSI = sum over bins of (q - p) ln(q / p), with bins at the reference's quantiles so each
    holds about the same share of the reference and no bin is wasted on empty tails. The
    conventional reading (< 0.1 stable, 0.1-0.2 moderate, > 0.2 significant) makes the
    threshold meaningful to people who review drift events. Empty bins get a proportion of
    1e-4 so the index stays finite. With 2-D input the index is per feature and the largest
    one is compared with the threshold.
    """

    name = "psi"

    def __init__(
        self,
        reference: np.ndarray | None = None,
        window: int = 500,
        bins: int = 10,
        threshold: float = 0.2,
        feature_names: list[str] | None = None,
    ) -> None:
        self.bins = check_int("bins", bins, minimum=2)
        self.threshold = check_float("threshold", threshold, low=0.0, low_open=True)
        super().__init__(reference, window, feature_names)

    def __repr__(self) -> str:
        return params_repr(self, ("window", "bins", "threshold", "feature_names"))

    def _set_reference(self, ref: np.ndarray) -> None:
        super()._set_reference(ref)
        # Interior edges per feature; a repeated quantile (discrete data) would make an empty
        # bin in both samples, so repeats are pushed to +inf where nothing ever lands.
        edges = np.quantile(ref, np.linspace(0.0, 1.0, self.bins + 1)[1:-1], axis=0)
        edges[1:][np.diff(edges, axis=0) == 0] = np.inf
        self._edges = np.sort(edges, axis=0)  # (bins - 1, d)
        self._ref_props = self._proportions(ref)

    def _proportions(self, x: np.ndarray) -> np.ndarray:
        """Share of ``x`` in each bin, per feature: ``(d, bins)``, floored at eps."""
        d = x.shape[1]
        idx = (x[:, None, :] > self._edges[None, :, :]).sum(axis=1)  # bin k = (edge[k-1], edge[k]]
        flat = (idx + np.arange(d) * self.bins).ravel()
        counts = np.bincount(flat, minlength=d * self.bins).reshape(d, self.bins)
        return np.maximum(counts / len(x), _PSI_EPS)

    def _test(self, window: np.ndarray, index: int) -> DriftSignal | None:
        p = self._ref_props
        q = self._proportions(window)
        psi = ((q - p) * np.log(q / p)).sum(axis=1)
        j = int(np.argmax(psi))
        if not psi[j] > self.threshold:
            return None
        return DriftSignal(
            detector=self.name,
            statistic=float(psi[j]),
            threshold=self.threshold,
            index=index,
            feature=self._feature(j),
        )
