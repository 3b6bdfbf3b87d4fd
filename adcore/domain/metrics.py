"""Ranking metrics for labelled benchmarks: ROC-AUC and average precision (numpy only).

They match scikit-learn's ``roc_auc_score`` (ties counted as one half) and
``average_precision_score`` (step-wise, no interpolation) so figures are comparable
with ADBench's, without making scikit-learn a dependency of the core.
"""

from __future__ import annotations

import numpy as np

from adcore.errors import DataError


def _check(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise DataError(f"{y.shape[0]} labels for {s.shape[0]} scores")
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be 0 (normal) or 1 (anomaly)")
    positives = int(y.sum())
    if positives == 0 or positives == y.shape[0]:
        raise DataError("ROC-AUC and average precision need both normal and anomalous rows")
    return y.astype(bool), s


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random anomaly > that of a random normal row)."""
    y, s = _check(y_true, scores)
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    ranks = np.empty(s.shape[0], dtype=np.float64)
    # average ranks over ties (the Mann-Whitney statistic counts a tie as 1/2)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: the mean of the precision at each anomaly's rank (ties grouped)."""
    y, s = _check(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]
    true_pos = np.cumsum(y_sorted)[distinct]
    predicted = distinct + 1
    precision = true_pos / predicted
    recall = true_pos / y_sorted.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
