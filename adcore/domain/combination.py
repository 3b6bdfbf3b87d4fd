"""Normalising and combining the scores of an ensemble's members.

Each base detector scores a row on its own scale (an isolation depth, a distance, a
negative log tail probability), higher meaning more anomalous. Before they can be
combined the scores must be put on a common scale, and because an ensemble is itself a
detector, that scale is *learned from the training scores* and then applied unchanged
to new data: a normaliser fitted on the rows being scored would make a row's score
depend on the other rows of the batch, and scoring one row at a time would be
meaningless.

The pieces, in the order the ensemble uses them:

- :class:`ScoreNormalizer` (``rank``, ``zscore``, ``minmax``, ``unify``, ``none``) maps
  each member's scores to a common scale, fitted on the training matrix;
- :class:`ScoreCombiner` (``average``, ``max``, ``median``, ``aom``, ``moa``,
  ``weighted``, ``consensus``) turns the ``(n_samples, n_members)`` matrix into one
  score per row; it is fitted too, because ``aom``/``moa`` draw their buckets and
  ``consensus`` learns its member weights from the training matrix;
- :func:`vote` combines 0/1 labels, and :class:`Stacker` learns a combination when a
  few labels are known.

The default (``DEFAULT_NORMALIZATION``, ``DEFAULT_COMBINATION``) was chosen on the
ADBench benchmark described in ``docs/ensemble-default.md`` (reproduced by
``benchmarks/ensemble_research.py``): ``consensus`` is a weighted Bonferroni (min-p)
combination of the members' empirical tail probabilities, each member weighted by how
well it agrees with the other members. Taking the most extreme member catches anomalies
that only one kind of detector sees (local anomalies for kNN, global ones for
isolation forest), which a plain average dilutes; the agreement weights keep a member
that is noise from dominating that maximum.

Only numpy is imported with this module, so an ensemble costs nothing at import time;
scikit-learn is imported when a :class:`Stacker` is fitted, and scipy (for ``erf``, with
a pure-Python fallback) when ``unify`` is used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adcore.errors import MissingDependencyError, NotFittedError, ParameterError

__all__ = [
    "COMBINATIONS",
    "DEFAULT_COMBINATION",
    "DEFAULT_NORMALIZATION",
    "NORMALIZATIONS",
    "ScoreCombiner",
    "ScoreNormalizer",
    "Stacker",
    "vote",
]

NORMALIZATIONS = ("rank", "zscore", "minmax", "unify", "none")
COMBINATIONS = ("average", "max", "median", "aom", "moa", "weighted", "consensus")

#: Chosen from evidence (docs/ensemble-default.md): on 16 ADBench datasets ``consensus``
#: beats the best single member's mean ROC-AUC without labels and keeps that lead when a
#: member is noise. It re-ranks its input, so on the training range any increasing
#: normalisation gives it the same scores; ``zscore`` is the default because it keeps
#: the magnitude of new scores beyond the training range (``rank`` caps them at 1), which
#: ``consensus`` uses to order rows more extreme than anything seen in training, and
#: because it beats ``rank`` for every other combination in the same benchmark.
DEFAULT_NORMALIZATION = "zscore"
DEFAULT_COMBINATION = "consensus"

# Options each combination accepts through ``ScoreCombiner(**options)``.
_COMBINER_OPTIONS: dict[str, tuple[str, ...]] = {"consensus": ("min_agreement",)}


def _check_method(method: Any, choices: tuple[str, ...], what: str) -> str:
    name = str(method).strip().lower() if isinstance(method, str) else method
    if name not in choices:
        raise ParameterError(f"unknown {what} {method!r}; choose one of: {', '.join(choices)}")
    return name


def _as_matrix(scores: Any, what: str, *, finite: bool) -> np.ndarray:
    """A float64 ``(n_samples, n_members)`` matrix, or a ParameterError saying what is wrong.

    NaN is always refused (no combination can rank it); infinities only in training
    matrices (``finite=True``), from which means, spreads and tails are estimated.
    """
    try:
        matrix = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a numeric matrix (n_samples, n_members)") from None
    if matrix.ndim != 2:
        raise ParameterError(
            f"{what} must be a 2-D matrix (n_samples, n_members), got an array of shape {matrix.shape}"
        )
    if matrix.shape[1] == 0:
        raise ParameterError(f"{what} has no member columns")
    bad = ~np.isfinite(matrix) if finite else np.isnan(matrix)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        kind = "non-finite" if finite else "NaN"
        raise ParameterError(f"{what} holds {kind} scores (first at row {row}, member column {col})")
    return matrix


#: Normalised and combined scores are kept within +-SCORE_CAP: a member whose scores reach
#: the float64 limit (~1.8e308) or overflow on the way is as extreme as a score can say, and
#: the headroom lets combinations add up many such scores without overflowing to inf.
SCORE_CAP = 1e300

#: A training column whose largest magnitude reaches 2**_HUGE_EXP is normalised rescaled
#: by a power of two (exact), so that its range and differences stay finite.
_HUGE_EXP = 1020


def _cap(values: np.ndarray) -> np.ndarray:
    """``values`` clipped to +-SCORE_CAP in place (NaN cannot occur: inputs are checked)."""
    return np.clip(values, -SCORE_CAP, SCORE_CAP, out=values)


def _scale_exponents(matrix: np.ndarray) -> np.ndarray | None:
    """Per column, the power of two bringing huge magnitudes below 2**_HUGE_EXP; None if none need it.

    zscore, minmax and unify do not change when a column is multiplied by a positive
    number, so they can be learned and applied on the rescaled column; ordinary columns
    are untouched, bit for bit.
    """
    _, exponent = np.frexp(np.abs(matrix).max(axis=0))
    huge = exponent > _HUGE_EXP
    if not huge.any():
        return None
    return np.where(huge, _HUGE_EXP - exponent, 0).astype(np.int64)


def _mean_std(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, finite for any finite matrix.

    The squares in a plain ``std`` overflow from magnitudes near 1e154; such columns are
    recomputed divided by a power of two that brings them into [-1, 1] (exact), and the
    results scaled back (a std never exceeds the largest magnitude, so it fits).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = matrix.mean(axis=0), matrix.std(axis=0)
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        _, exponent = np.frexp(np.abs(matrix[:, bad]).max(axis=0))
        unit = np.ldexp(matrix[:, bad], -exponent)
        mean[bad] = np.ldexp(unit.mean(axis=0), exponent)
        std[bad] = np.ldexp(unit.std(axis=0), exponent)
    return mean, std


def _safe_mean(matrix: np.ndarray, axis: int) -> np.ndarray:
    """``matrix.mean(axis)``, recomputed as a sum of ``x / n`` where the plain sum overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = matrix.mean(axis=axis)
        bad = ~np.isfinite(mean) & np.isfinite(matrix).all(axis=axis)
        if bad.any():
            rows = matrix[bad] if axis == 1 else matrix[:, bad]
            mean[bad] = (rows / matrix.shape[axis]).sum(axis=axis)
    return mean


def _check_width(matrix: np.ndarray, n_members: int, what: str) -> None:
    if matrix.shape[1] != n_members:
        raise ParameterError(f"{what} has {matrix.shape[1]} member columns, but was fitted on {n_members}")


def _ecdf(sorted_train: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mid-rank empirical CDF of each column of ``scores`` against the sorted training column.

    ``(#{train < s} + #{train <= s}) / (2 n)``: ties count half, so a training row maps
    to ``(average rank - 0.5) / n`` and a new score beyond the training range to exactly
    0 or 1. It depends only on the order of the scores, so members on wildly different
    scales (depths, distances, log probabilities) become comparable without assuming any
    distribution.
    """
    n = sorted_train.shape[0]
    out = np.empty(scores.shape, dtype=np.float64)
    for j in range(scores.shape[1]):
        # Sorted queries let the binary searches walk the training column in order: about
        # three times faster on large matrices than querying in row order.
        order = np.argsort(scores[:, j], kind="stable")
        queries = scores[order, j]
        left = np.searchsorted(sorted_train[:, j], queries, side="left")
        right = np.searchsorted(sorted_train[:, j], queries, side="right")
        out[order, j] = (left + right) / (2.0 * n)
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise: scipy's when installed, else ``math.erf`` (numpy has none)."""
    try:
        from scipy.special import erf
    except ImportError:
        return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)
    return erf(x)


def _rankdata(column: np.ndarray) -> np.ndarray:
    """Average ranks (1..n), ties averaged: scipy's ``rankdata`` in numpy."""
    order = np.argsort(column, kind="mergesort")
    ordered = column[order]
    new_group = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.concatenate((starts[1:], [len(column)]))
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(len(column), dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


class ScoreNormalizer:
    """Puts every member's scores on a common scale learned from the training scores.

    Methods (``fit`` learns per-column statistics from the training matrix, ``transform``
    applies them to any matrix with the same columns):

    - ``rank`` (this class's default): the empirical CDF against that column's training
      scores, ties averaged, in ``[0, 1]``; a training row gets ``(average rank - 0.5) / n``.
      Scale-free and robust to the heavy tails of distance scores, but every new score
      beyond the training maximum maps to 1, however far beyond.
    - ``zscore`` (the ensemble's default, ``DEFAULT_NORMALIZATION``): ``(s - mean) / std``
      of the training scores (a std of 0 becomes 1, so a constant member maps to 0
      instead of dividing by zero).
    - ``minmax``: ``(s - min) / (max - min)`` of the training scores (a range of 0
      becomes 1). Deliberately *not* clipped: a new row scored beyond anything seen in
      training maps above 1, and clipping would hide exactly the rows that matter.
    - ``unify``: PyOD's ``predict_proba(method="unify")``, the Gaussian scaling of
      Kriegel et al. (2011), "Interpreting and unifying outlier scores":
      ``max(0, erf(zscore / sqrt(2)))``, a pseudo-probability of being an outlier.
    - ``none``: the scores unchanged (for members already on one scale).
    """

    def __init__(self, method: str = "rank") -> None:
        self.method = _check_method(method, NORMALIZATIONS, "normalisation")
        self.n_members_: int | None = None
        self.n_train_: int | None = None
        self.sorted_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.min_: np.ndarray | None = None
        self.exponents_: np.ndarray | None = None

    def fit(self, train_scores: np.ndarray) -> ScoreNormalizer:
        """Learn the per-member statistics from the ``(n, k)`` training scores."""
        matrix = _as_matrix(train_scores, "training scores", finite=True)
        if matrix.shape[0] == 0:
            raise ParameterError("training scores have no rows; a normaliser needs at least one")
        self.n_train_, self.n_members_ = matrix.shape
        if self.method == "rank":
            self.sorted_ = np.sort(matrix, axis=0)
            return self
        self.exponents_ = _scale_exponents(matrix)
        if self.exponents_ is not None:
            matrix = np.ldexp(matrix, self.exponents_)
        if self.method in ("zscore", "unify"):
            self.mean_, std = _mean_std(matrix)
            self.scale_ = np.where(std > 0, std, 1.0)
        elif self.method == "minmax":
            lo, hi = matrix.min(axis=0), matrix.max(axis=0)
            self.min_ = lo
            self.scale_ = np.where(hi > lo, hi - lo, 1.0)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Map ``(m, k)`` scores with the statistics learned by ``fit``; float64, same shape."""
        if self.n_members_ is None:
            raise NotFittedError("ScoreNormalizer.transform called before fit")
        matrix = _as_matrix(scores, "scores", finite=False)
        _check_width(matrix, self.n_members_, "scores")
        if self.method == "rank":
            return _ecdf(self.sorted_, matrix)  # type: ignore[arg-type]
        if self.method == "none":
            return _cap(matrix.copy())
        exponents = getattr(self, "exponents_", None)  # absent in ensembles pickled before it
        with np.errstate(over="ignore"):  # a huge score over a tiny spread: capped just below
            if exponents is not None:
                matrix = np.ldexp(matrix, exponents)
            offset = self.min_ if self.method == "minmax" else self.mean_
            z = _cap((matrix - offset) / self.scale_)
        if self.method == "unify":
            return np.clip(_erf(z / np.sqrt(2.0)), 0.0, None)
        return z

    def fit_transform(self, train_scores: np.ndarray) -> np.ndarray:
        """``fit`` then ``transform`` on the same training scores."""
        return self.fit(train_scores).transform(train_scores)


def _check_weights(weights: Any, n_members: int) -> np.ndarray:
    try:
        w = np.asarray(weights, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ParameterError(f"weights must be numbers, got {weights!r}") from None
    if w.size != n_members:
        raise ParameterError(f"got {w.size} weights for {n_members} ensemble members; give one per member")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ParameterError(f"weights must be finite and non-negative, got {w.tolist()}")
    if w.sum() <= 0:
        raise ParameterError("weights must not all be zero")
    return w / w.sum()


class ScoreCombiner:
    """Turns the ``(n_samples, n_members)`` matrix of normalised scores into one score per row.

    Methods:

    - ``average``, ``max``, ``median``: of the normalised scores, per row.
    - ``weighted``: the average with the user's ``weights`` (one per member, non-negative,
      normalised to sum 1).
    - ``aom`` / ``moa``: Aggarwal & Sathe (2015), as in PyOD's ``pyod.models.combination``
      (static mode): the members are shuffled with ``random_state`` and split into
      ``n_buckets`` buckets; ``aom`` averages the bucket maxima, ``moa`` takes the maximum of
      the bucket averages. The buckets are drawn once at ``fit`` so training and new data
      are combined the same way. Unlike PyOD, the members need not divide evenly (bucket
      sizes differ by at most one), and ``n_buckets`` is capped at the number of members
      (so with ``n_buckets >= k``, ``aom`` is the average and ``moa`` the maximum).
    - ``consensus`` (the default, see the module docstring): every member's score is turned
      into an empirical tail probability against its training scores,
      ``p = (#{train > s} + #{train == s} / 2 + 1/2) / (n + 1)`` (a mid-p conformal
      p-value, never 0); beyond the largest training score, where the empirical CDF is
      flat, ``p`` keeps falling along an exponential tail fitted to the top ``sqrt(n)``
      training scores, so rows further out than anything seen in training still score
      higher the further out they are. The row's score is ``-log min_j (p_j / w_j)``, the
      weighted Bonferroni combination. Bonferroni holds under any dependence between
      members, so ``exp(-score)`` (capped at 1) is roughly the chance that a normal row is
      this extreme for some member; it is meant for ranking and thresholds, not as a
      calibrated probability (the weights are learned from the same training rows).

      The weight of member j is its agreement with the others: the Spearman correlation,
      on the training rows, between its scores and the mean rank of the *other* members
      (leave-one-out, so it cannot agree with itself), clipped at 0 and normalised to sum
      1. A member that is noise agrees with nobody, gets a weight near 0, and can only win
      the maximum with an absurdly small tail probability; a member that correlates with
      the rest keeps most of its weight even when it alone sees some anomalies. Option
      ``min_agreement`` (default 0.0): members whose agreement is at or below it get
      weight 0.

      The input is re-ranked, so on the training range any increasing normalisation
      (``zscore``, ``minmax``, ``none``, ``rank``) gives the same scores; beyond it only
      those that keep magnitudes (not ``rank``, which caps at 1) let the tail work.

    ``weights_`` holds the member weights actually used (for reports): uniform for
    ``average``, the normalised user weights for ``weighted``, the learned ones for
    ``consensus``, ``None`` for ``max``, ``median``, ``aom`` and ``moa`` (``buckets_`` holds
    those buckets). ``agreement_`` holds the consensus correlations.
    """

    def __init__(
        self,
        method: str = DEFAULT_COMBINATION,
        *,
        weights: Any = None,
        n_buckets: int = 5,
        random_state: Any = None,
        **options: Any,
    ) -> None:
        self.method = _check_method(method, COMBINATIONS, "combination")
        if weights is not None and self.method != "weighted":
            raise ParameterError(f"weights apply only to the 'weighted' combination, not {self.method!r}")
        if weights is None and self.method == "weighted":
            raise ParameterError("the 'weighted' combination needs weights, one per member")
        if isinstance(n_buckets, bool) or not isinstance(n_buckets, (int, np.integer)) or n_buckets < 1:
            raise ParameterError(f"n_buckets must be a positive integer, got {n_buckets!r}")
        allowed = _COMBINER_OPTIONS.get(self.method, ())
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            accepts = f"accepts only: {', '.join(allowed)}" if allowed else "takes no options"
            raise ParameterError(f"combination {self.method!r} {accepts}; got {', '.join(unknown)}")
        try:
            self.min_agreement = float(options.get("min_agreement", 0.0))
        except (TypeError, ValueError):
            raise ParameterError(
                f"min_agreement must be a number, got {options['min_agreement']!r}"
            ) from None
        if not -1.0 <= self.min_agreement < 1.0:
            raise ParameterError(f"min_agreement must be in [-1, 1), got {self.min_agreement!r}")
        self.weights = weights
        self.n_buckets = int(n_buckets)
        self.random_state = random_state
        self.options = dict(options)
        self.n_members_: int | None = None
        self.weights_: np.ndarray | None = None
        self.buckets_: list[np.ndarray] | None = None
        self.agreement_: np.ndarray | None = None
        self._sorted: np.ndarray | None = None
        self._tail_scale: np.ndarray | None = None

    def fit(self, train_norm_scores: np.ndarray) -> ScoreCombiner:
        """Fix what the combination needs from the training matrix (buckets, weights)."""
        matrix = _as_matrix(train_norm_scores, "training scores", finite=True)
        n, k = matrix.shape
        if n == 0:
            raise ParameterError("training scores have no rows; a combiner needs at least one")
        self.n_members_ = k
        self.weights_ = None
        self.buckets_ = None
        self.agreement_ = None
        self._sorted = None
        self._tail_scale = None
        if self.method == "average":
            self.weights_ = np.full(k, 1.0 / k)
        elif self.method == "weighted":
            self.weights_ = _check_weights(self.weights, k)
        elif self.method in ("aom", "moa"):
            order = _permutation(k, self.random_state)
            self.buckets_ = [np.sort(b) for b in np.array_split(order, min(self.n_buckets, k))]
        elif self.method == "consensus":
            self._sorted = np.sort(matrix, axis=0)
            self._tail_scale = _tail_scale(self._sorted)
            self.agreement_ = _loo_agreement(matrix)
            w = np.where(self.agreement_ > max(self.min_agreement, 0.0), self.agreement_, 0.0)
            # Nobody agrees with anybody (e.g. two anti-correlated members): no evidence
            # to prefer one, so fall back to equal weights rather than to nothing.
            self.weights_ = w / w.sum() if w.sum() > 0 else np.full(k, 1.0 / k)
        return self

    def combine(self, norm_scores: np.ndarray) -> np.ndarray:
        """One score per row of the ``(m, k)`` normalised matrix, higher = more anomalous."""
        if self.n_members_ is None:
            raise NotFittedError("ScoreCombiner.combine called before fit")
        matrix = _as_matrix(norm_scores, "scores", finite=False)
        _check_width(matrix, self.n_members_, "scores")
        # Scores near the float64 limit can overflow in sums and means: those are redone
        # without overflow, and every combined score is kept within +-SCORE_CAP.
        with np.errstate(over="ignore"):
            return _cap(self._combine(matrix))

    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        if self.method in ("average", "weighted"):
            return matrix @ self.weights_
        if self.method == "max":
            return matrix.max(axis=1)
        if self.method == "median":
            return _safe_median(matrix)
        if self.method == "aom":
            return _safe_mean(np.column_stack([matrix[:, b].max(axis=1) for b in self.buckets_]), axis=1)
        if self.method == "moa":
            return np.column_stack([_safe_mean(matrix[:, b], axis=1) for b in self.buckets_]).max(axis=1)
        return self._consensus(matrix)

    def fit_combine(self, train_norm_scores: np.ndarray) -> np.ndarray:
        """``fit`` then ``combine`` on the same training matrix."""
        return self.fit(train_norm_scores).combine(train_norm_scores)

    def _consensus(self, matrix: np.ndarray) -> np.ndarray:
        sorted_train, scale = self._sorted, self._tail_scale
        n = sorted_train.shape[0]  # type: ignore[union-attr]
        # Tail probability from the mid-rank ECDF r: p = (n (1 - r) + 1/2) / (n + 1), the
        # conformal p-value with ties split; in (0, 1), so its log is finite.
        log_p = np.log((n * (1.0 - _ecdf(sorted_train, matrix)) + 0.5) / (n + 1.0))  # type: ignore[arg-type]
        # Beyond the largest training score the ECDF is flat; continue with the fitted
        # exponential tail so rows further out score higher (in logs: no underflow).
        excess = matrix - sorted_train[-1]  # type: ignore[index]
        beyond = excess > 0
        if beyond.any():
            ratio = np.where(beyond, excess, 0.0) / scale
            # Beyond a training maximum near -1.8e308, the excess itself can overflow.
            overflowed = np.isinf(excess) & np.isfinite(matrix)
            ratio = np.where(overflowed, _halved_ratio(matrix, sorted_train, scale), ratio)
            log_p = np.where(beyond, np.log(0.5 / (n + 1.0)) - ratio, log_p)
        used = self.weights_ > 0  # type: ignore[operator]
        log_w = np.log(self.weights_[used])  # type: ignore[index]
        return np.max(log_w[None, :] - log_p[:, used], axis=1)


def _tail_scale(sorted_train: np.ndarray) -> np.ndarray:
    """Per member, the scale of an exponential tail fitted to its largest training scores.

    Peaks over threshold with a shape of 0: the maximum-likelihood scale is the mean
    excess of the top ``m = ceil(sqrt(n))`` scores (at least 5, when there are that many)
    over the next one. It only serves rows beyond the training maximum, where the
    empirical CDF has nothing left to say; a member whose top scores are all tied falls
    back to its standard deviation (or 1), so the scale is never 0.
    """
    n = sorted_train.shape[0]
    m = min(n - 1, max(5, math.ceil(math.sqrt(n))))
    with np.errstate(over="ignore"):
        if m >= 1:
            # Excesses of scores spread over the whole float64 range can overflow: such a
            # tail is as wide as a float can say, so its scale is the largest float.
            excess = sorted_train[n - m :] - sorted_train[n - m - 1]
            scale = np.minimum(_safe_mean(np.minimum(excess, _FLOAT_MAX), axis=0), _FLOAT_MAX)
        else:
            scale = np.zeros(sorted_train.shape[1])
    _, std = _mean_std(sorted_train)
    return np.where(scale > 0, scale, np.where(std > 0, std, 1.0))


_FLOAT_MAX = float(np.finfo(np.float64).max)


def _halved_ratio(matrix: np.ndarray, sorted_train: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(matrix - training max) / scale`` computed on halves, for excesses beyond the float64 limit."""
    return (matrix / 2 - sorted_train[-1] / 2) / (scale / 2)


def _safe_median(matrix: np.ndarray) -> np.ndarray:
    """Row medians; where the mean of two middle values near the float64 limit overflows, on halves."""
    median = np.median(matrix, axis=1)
    bad = np.isinf(median) & np.isfinite(matrix).all(axis=1)
    if bad.any():
        median[bad] = np.median(matrix[bad] / 2, axis=1) * 2
    return median


def _permutation(k: int, random_state: Any) -> np.ndarray:
    """A seeded shuffle of the member indices (int, Generator, RandomState or None)."""
    if isinstance(random_state, np.random.RandomState):
        return random_state.permutation(k)
    try:
        rng = np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ParameterError(
            f"random_state must be an int, a numpy Generator/RandomState or None, got {random_state!r}"
        ) from None
    return rng.permutation(k)


#: Rows the agreement between members is estimated from: a rank correlation from 50,000
#: rows has a standard error near 0.004, far below the differences that change a weight,
#: and ranking every row of a million-row fit would cost seconds of serial time.
AGREEMENT_ROWS = 50_000


def _loo_agreement(matrix: np.ndarray) -> np.ndarray:
    """Spearman correlation of each member with the mean rank of the others.

    Ranks make the agreement scale-free; leaving the member out of its own reference
    stops a member from agreeing with itself (with five members, including it would give
    even pure noise a correlation of 0.2 to 0.45). A single member has nobody to agree
    with and gets 1. A constant member (no ranking at all) gets 0. Beyond
    :data:`AGREEMENT_ROWS` rows, an evenly strided sample of that many rows is used
    (deterministic, and spread over the whole input).
    """
    k = matrix.shape[1]
    if k == 1:
        return np.ones(1)
    if matrix.shape[0] > AGREEMENT_ROWS:
        matrix = matrix[np.linspace(0, matrix.shape[0] - 1, AGREEMENT_ROWS).astype(np.int64)]
    ranks = np.column_stack([_rankdata(matrix[:, j]) for j in range(k)])
    total = ranks.sum(axis=1)
    agreement = np.zeros(k)
    for j in range(k):
        others = _rankdata((total - ranks[:, j]) / (k - 1))
        a, b = ranks[:, j] - ranks[:, j].mean(), others - others.mean()
        denom = np.sqrt((a @ a) * (b @ b))
        agreement[j] = (a @ b) / denom if denom > 0 else 0.0
    return agreement


def vote(labels: np.ndarray, *, min_votes: int | None = None) -> np.ndarray:
    """Combine members' 0/1 labels: a row is anomalous when at least ``min_votes`` say so.

    The default is a strict majority (``k // 2 + 1`` of ``k`` members), so a tie among an
    even number of members stays normal: an alarm should need more evidence than silence.
    ``min_votes=1`` is "any member", ``min_votes=k`` is "all members".
    """
    try:
        matrix = np.asarray(labels)
    except (TypeError, ValueError):
        raise ParameterError("labels must be a 0/1 matrix (n_samples, n_members)") from None
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ParameterError(
            f"labels must be a 2-D 0/1 matrix (n_samples, n_members), got shape {matrix.shape}"
        )
    try:
        numeric = matrix.astype(np.float64)
    except (TypeError, ValueError):
        raise ParameterError("labels must be 0/1") from None
    if not np.isin(numeric, (0.0, 1.0)).all():
        raise ParameterError("labels must be 0 (normal) or 1 (anomaly)")
    k = matrix.shape[1]
    if min_votes is None:
        min_votes = k // 2 + 1
    if isinstance(min_votes, bool) or not isinstance(min_votes, (int, np.integer)) or not 1 <= min_votes <= k:
        raise ParameterError(
            f"min_votes must be an integer from 1 to {k} (the number of members), got {min_votes!r}"
        )
    return (numeric.sum(axis=1) >= min_votes).astype(np.int64)


class Stacker:
    """A supervised meta-learner over the members' normalised scores, for when a few labels are known.

    A logistic regression with ``class_weight="balanced"``: labelled anomalies are rare,
    and without re-weighting the fit would mostly learn the prior "normal". Rows labelled
    ``-1`` or NaN are unknown and ignored, so the same label vector that marks a handful
    of reviewed rows can be passed as is. ``coef_`` (one per member) and ``intercept_``
    say how much each member is trusted.
    """

    def __init__(self, C: float = 1.0, random_state: Any = None) -> None:
        try:
            self.C = float(C)
        except (TypeError, ValueError):
            raise ParameterError(f"C must be a positive number, got {C!r}") from None
        if not np.isfinite(self.C) or self.C <= 0:
            raise ParameterError(f"C must be a positive number, got {C!r}")
        self.random_state = random_state
        self.model_: Any = None
        self.coef_: np.ndarray | None = None
        self.intercept_: float | None = None
        self.n_members_: int | None = None
        self.n_labelled_: dict[str, int] | None = None

    def fit(self, norm_scores: np.ndarray, y: np.ndarray) -> Stacker:
        """Fit on the labelled rows of ``norm_scores`` (y: 1 anomaly, 0 normal, -1/NaN unknown)."""
        matrix = _as_matrix(norm_scores, "scores", finite=True)
        try:
            labels = np.asarray(y, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ParameterError("labels must be 1 (anomaly), 0 (normal), or -1/NaN (unknown)") from None
        if labels.shape[0] != matrix.shape[0]:
            raise ParameterError(f"got {labels.shape[0]} labels for {matrix.shape[0]} rows of scores")
        known = np.isin(labels, (0.0, 1.0))
        unknown = np.isnan(labels) | (labels == -1.0)
        if not (known | unknown).all():
            bad = labels[~(known | unknown)][0]
            raise ParameterError(f"labels must be 1 (anomaly), 0 (normal), or -1/NaN (unknown), got {bad:g}")
        n_anomalies = int((labels == 1.0).sum())
        n_normal = int((labels == 0.0).sum())
        missing = [
            name for name, count in (("anomaly (y=1)", n_anomalies), ("normal (y=0)", n_normal)) if count == 0
        ]
        if missing:
            raise ParameterError(
                f"stacking needs at least one labelled row of each class; no {' and no '.join(missing)} "
                f"row among the labels ({n_anomalies} anomalies, {n_normal} normal, "
                f"{int(unknown.sum())} unknown)"
            )
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise MissingDependencyError(
                "stacking needs scikit-learn; install it with: pip install scikit-learn"
            ) from None
        model = LogisticRegression(C=self.C, class_weight="balanced", random_state=self.random_state)
        model.fit(matrix[known], labels[known].astype(np.int64))
        self.model_ = model
        self.coef_ = model.coef_.ravel().copy()
        self.intercept_ = float(model.intercept_[0])
        self.n_members_ = matrix.shape[1]
        self.n_labelled_ = {"anomaly": n_anomalies, "normal": n_normal}
        return self

    def combine(self, norm_scores: np.ndarray) -> np.ndarray:
        """P(anomaly) per row of the ``(m, k)`` normalised matrix, from the fitted model."""
        if self.model_ is None:
            raise NotFittedError("Stacker.combine called before fit")
        matrix = _as_matrix(norm_scores, "scores", finite=True)
        _check_width(matrix, self.n_members_, "scores")  # type: ignore[arg-type]
        return self.model_.predict_proba(matrix)[:, 1].astype(np.float64)
