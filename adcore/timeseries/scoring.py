"""Turn a tabular detector into a causal per-record scorer of one series (sliding windows).

The simplest honest bridge from "a detector of rows" to "a score per record as it arrives":
each record becomes the vector of the last ``window`` values (the first records repeat the
first value), standardised by the mean and deviation of the training part. The detector is
fitted on the windows of the training part (by default NAB's probationary period, the
records a benchmark does not judge), then every later record is scored from its own window,
so no score uses a record after its own. Raw scores of different series are not on one scale
while NAB picks one threshold for the whole corpus, so each series' scores are expressed as
robust z-scores of the detector's scores on its own training windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from adcore.domain.ts_metrics import NAB_PROBATION_FRACTION
from adcore.errors import DataError, ParameterError


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """Row ``t`` holds ``values[t - window + 1 .. t]`` (left-padded with the first value)."""
    if window < 1:
        raise ParameterError(f"window must be at least 1, not {window}")
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise DataError("an empty series has nothing to score")
    padded = np.concatenate((np.full(window - 1, x[0]), x))
    return np.lib.stride_tricks.sliding_window_view(padded, window)


def causal_window_scores(
    make_detector: Callable[[], Any],
    values: np.ndarray,
    *,
    window: int = 16,
    train_fraction: float = NAB_PROBATION_FRACTION,
) -> np.ndarray:
    """Per-record scores of one series from a detector fitted on its first ``train_fraction``.

    ``make_detector()`` returns an unfitted detector (``fit`` / ``decision_function``, higher
    means more anomalous). The training records themselves get the lowest later score: they
    were seen by the fit, and a benchmark ignores them anyway (NAB's probationary period).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise DataError("the series holds non-finite values")
    n = x.shape[0]
    n_train = min(n, max(math.floor(train_fraction * n), window + 1))
    head = x[:n_train]
    spread = float(head.std()) or 1.0
    rows = sliding_windows((x - float(head.mean())) / spread, window)
    detector = make_detector()
    detector.fit(rows[:n_train])
    train = np.asarray(detector.decision_function(rows[:n_train]), dtype=np.float64)
    scores = np.asarray(detector.decision_function(rows), dtype=np.float64)
    centre = float(np.median(train))
    mad = 1.4826 * float(np.median(np.abs(train - centre)))
    scale = mad if mad > 0 else (float(train.std()) or 1.0)
    z = (scores - centre) / scale
    if n_train < n:
        z[:n_train] = z[n_train:].min()
    return z
