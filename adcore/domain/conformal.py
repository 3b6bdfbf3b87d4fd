"""Calibrated scores: conformal p-values and Benjamini-Hochberg labels.

An anomaly score says "more unusual", not "how unusual": its scale differs per detector and
dataset, which is why every fixed cut (``contamination``, ``mad:3``) is a guess. A conformal
p-value turns a score into a probability statement that needs no guess. Given calibration
scores ``c_1..c_n`` of normal data that the model did *not* train on,

    p(s) = (1 + #{i : c_i >= s}) / (n + 1)

is a valid p-value for "this row is as normal as the calibration rows": under
exchangeability, ``P(p <= a) <= a`` for every ``a`` (split conformal; Vovk et al. 2005,
Bates et al. 2023 for outlier detection). Conformal p-values of a batch are positively
dependent (PRDS, Bates et al. 2023), so Benjamini-Hochberg on them controls the false
discovery rate: among the rows labelled anomalous, at most a share ``q`` are normal, on
average.

How the calibration scores are obtained (:func:`cross_calibration_scores`): K-fold
cross-conformal with one final model. The training rows are split into ``K`` folds; a fresh
detector with the same parameters is fitted on ``K - 1`` of them and scores the one left out.
The ``n`` out-of-fold scores are the calibration set, kept with the fitted model (it is
pickled with the detector, so it survives the model store); new rows are scored by the model
fitted on all rows. This is ``nonconform``'s cross-conformal strategy without ``plus``: one
model to keep and to score with instead of ``K``, every training row used for calibration,
and no training row lost to the model. A model fitted on ``n`` rows scores new normal rows a
little lower than one fitted on ``(K-1)/K n`` (distances to more neighbours are shorter), so
the p-values err on the conservative side; the FDR tests (tests/test_conformal.py) check the
realised rate on generated data for several detectors. Anomalies in the training data sit in
the calibration set too; they only make p-values larger (conservative).

The training rows' own p-values (what ``adcore run`` writes) come from their out-of-fold
scores, each ranked against the other rows' (a jackknife: a row never judges itself). They are
valid, but they are ranks: the ``k``-th smallest is at least ``k / n``, and BH rejects it only
below ``Q k / n``. So BH labels no training row, ever: a row cannot be told apart at a false
discovery rate from a set it belongs to. ``fdr:Q`` labels *new* rows against the calibration
set (``adcore fit`` then ``adcore score``, a stream's next records, ``predict``), and fitting
and scoring the same rows with it (``adcore run``, ``/v1/detect``, ``adcore.detect``) is
refused (:func:`refuse_fdr_in_sample`) rather than answered "no anomalies".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from adcore.errors import DataError, NotFittedError

#: Folds of the cross-conformal calibration; 5 keeps 80% of the rows in each fold's model.
DEFAULT_FOLDS = 5


def conformal_p_values(scores: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """``(1 + #{c >= s}) / (n + 1)`` for every score ``s``; ``calibration`` sorted ascending.

    A score of ``+inf`` gets the smallest p-value, ``1 / (n + 1)``; it can never reach 0,
    which is what makes the p-value valid.
    """
    cal = np.asarray(calibration, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    at_least = cal.shape[0] - np.searchsorted(cal, s, side="left")
    return (1.0 + at_least) / (cal.shape[0] + 1.0)


def jackknife_p_values(calibration_scores: np.ndarray) -> np.ndarray:
    """The p-value of each calibration row against the others: ``#{j : c_j >= c_i} / n``.

    That is ``(1 + #{j != i : c_j >= c_i}) / ((n - 1) + 1)``, the conformal p-value with the
    row itself left out of its own calibration set.
    """
    c = np.asarray(calibration_scores, dtype=np.float64)
    ordered = np.sort(c)
    return (c.shape[0] - np.searchsorted(ordered, c, side="left")) / float(c.shape[0])


def benjamini_hochberg(p_values: np.ndarray, q: float) -> np.ndarray:
    """Which p-values Benjamini-Hochberg rejects at FDR level ``q``: a boolean mask.

    scipy's ``false_discovery_control`` gives the adjusted p-values (rejected where
    ``<= q``); without scipy (the core install) the same step-up rule in numpy:
    reject the ``k`` smallest p-values, ``k`` the largest with ``p_(k) <= q k / m``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    try:
        from scipy.stats import false_discovery_control
    except ImportError:  # the core install has no scipy
        return _bh_numpy(p, q)
    return np.asarray(false_discovery_control(p, method="bh") <= q, dtype=bool)


def single_row_cut(calibration: np.ndarray, q: float) -> float:
    """The score a row scored alone must exceed for its p-value to be <= ``q``.

    ``p(s) <= q`` holds when at most ``m = floor(q (n + 1)) - 1`` calibration scores are
    ``>= s``, that is when ``s`` exceeds the ``(m + 1)``-th largest; ``inf`` when ``q`` is below
    ``1 / (n + 1)``, the smallest p-value ``n`` calibration scores can give. BH on a batch
    cuts there or higher.
    """
    n = calibration.shape[0]
    most = int(np.floor(q * (n + 1) + 1e-9)) - 1
    return float(calibration[n - most - 1]) if most >= 0 else float("inf")


def _bh_numpy(p: np.ndarray, q: float) -> np.ndarray:
    m = p.shape[0]
    order = np.argsort(p, kind="stable")
    below = p[order] <= q * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if below.any():
        k = int(np.flatnonzero(below)[-1]) + 1
        out[order[:k]] = True
    return out


def cross_calibration_scores(
    build: Callable[[], Any],
    X: np.ndarray,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int | None = None,
) -> np.ndarray:
    """Out-of-fold scores of every row of ``X``: row i scored by a model that never saw it.

    ``build()`` returns a fresh, unfitted detector (``fit`` and ``decision_function``).
    Rows are assigned to folds by a permutation drawn from ``seed``, so a sorted or
    time-ordered file does not put all of one regime in one fold.
    """
    n = X.shape[0]
    k = min(int(folds), n)
    if k < 2 or n - n // k < 2:
        raise DataError(f"too few rows ({n}) to calibrate p-values: need at least 4")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.float64)
    for part in np.array_split(order, k):
        keep = np.ones(n, dtype=bool)
        keep[part] = False
        model = build()
        model.fit(X[keep])
        out[part] = np.asarray(model.decision_function(X[part]), dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise DataError(
            f"{bad} of {n} calibration scores are not finite (NaN or infinity): too few rows per fold "
            "for this detector to calibrate p-values"
        )
    return out


def refuse_fdr_in_sample(threshold: Any, where: str) -> None:
    """A one-line ``ParameterError`` for ``fdr:Q`` where the rows scored are the training rows."""
    from adcore.domain.thresholds import is_fdr
    from adcore.errors import ParameterError

    if is_fdr(threshold):
        raise ParameterError(
            f"{where} scores the rows it fits on, and threshold {str(threshold)!r} tests rows against "
            "the fit's calibration scores, which those rows are: their p-values are ranks that "
            "Benjamini-Hochberg never rejects. Fit on normal data (adcore fit --threshold fdr:Q, "
            "POST /v1/models) and score new rows, or ask for p-values only"
        )


def require_calibration(detector: Any) -> np.ndarray:
    """The sorted calibration scores of a fitted detector, or a one-line error saying how to get them."""
    cal = getattr(detector, "calibration_scores_", None)
    if cal is None:
        name = getattr(detector, "algorithm_name", "the detector")
        raise NotFittedError(
            f"{name} has no calibration scores for p-values: fit it with calibrate=True or "
            "threshold='fdr:Q' (CLI: --output-p-values, or --threshold fdr:Q at fit)"
        )
    return cal
