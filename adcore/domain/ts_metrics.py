"""Time-series anomaly metrics: VUS, range-based precision/recall and NAB scoring (numpy only).

Point-wise ROC-AUC and average precision (``adcore.domain.metrics``) punish a detector that
fires a few records early or late inside a labelled anomaly as hard as one that misses it,
and reward one that flags every record of a long range as much as one that flags its first
record. Time-series benchmarks therefore score ranges; the three families here are the ones
published results use, each written from its definition so figures are comparable:

- **VUS-ROC / VUS-PR** (Paparrizos et al., VLDB 2022), as computed by TSB-AD (NeurIPS 2024):
  the range-AUC of ROC and PR curves, averaged over buffer lengths ``0..max_buffer`` around
  each labelled range, on 250 thresholds sampled from the sorted scores.
- **Range-based precision and recall** (Tatbul et al., NeurIPS 2018): existence reward
  ``alpha``, positional bias (flat / front / back / middle) and a cardinality factor.
- **NAB scoring** (Lavin and Ahmad 2015; numenta/NAB ``nab/sweeper.py``): label windows, the
  scaled-sigmoid reward for the first detection in a window, a false-positive cost that is
  smaller just after a window, a false-negative cost per missed window, a probationary
  period that is not scored, one threshold per detector and profile chosen to maximise the
  corpus total, normalised so that the null detector scores 0 and the perfect one 100.

Detections are "score at or above the threshold" everywhere, as in NAB and TSB-AD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from adcore.errors import DataError, ParameterError

# --------------------------------------------------------------------------- shared checks


def _binary(y: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(y).ravel()
    if not np.isin(arr, (0, 1)).all():
        raise DataError(f"{what} must be 0 or 1")
    return arr.astype(np.int8)


def label_ranges(y: np.ndarray) -> np.ndarray:
    """The runs of 1 in a 0/1 vector as a ``(k, 2)`` array of inclusive ``[start, end]`` indices.

    Every range metric works on these runs, not on single records, which is what makes
    them range metrics.
    """
    arr = np.asarray(y).ravel().astype(np.int8)
    padded = np.concatenate(([0], arr, [0]))
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return np.stack([starts, ends], axis=1) if starts.size else np.zeros((0, 2), dtype=np.int64)


# ------------------------------------------------------------- range-based precision / recall

BIASES = ("flat", "front", "back", "middle")
CARDINALITIES = ("reciprocal", "one")


def _delta(length: int, bias: str) -> np.ndarray:
    """Positional weight of each record of a range of ``length`` records (1-based positions)."""
    pos = np.arange(1, length + 1, dtype=np.float64)
    if bias == "flat":
        return np.ones(length)
    if bias == "front":
        return length - pos + 1.0
    if bias == "back":
        return pos
    if bias == "middle":
        return np.where(pos <= length / 2.0, pos, length - pos + 1.0)
    raise ParameterError(f"bias must be one of {', '.join(BIASES)}, not {bias!r}")


def _overlap_reward(
    target: np.ndarray, others: np.ndarray, bias: str, cardinality: str
) -> tuple[float, float]:
    """(existence, overlap reward) of one range against a set of ranges (Tatbul et al., eq. 3-6).

    The overlap reward is the bias-weighted share of ``target`` covered by the ``others``,
    times the cardinality factor: 1 when one range overlaps it, ``1/x`` when ``x`` do (for
    ``cardinality="reciprocal"``; ``"one"`` never penalises fragmentation).
    """
    start, end = int(target[0]), int(target[1])
    hits = others[(others[:, 0] <= end) & (others[:, 1] >= start)] if len(others) else others
    if len(hits) == 0:
        return 0.0, 0.0
    weights = _delta(end - start + 1, bias)
    covered = 0.0
    for lo, hi in hits:
        a, b = max(start, int(lo)), min(end, int(hi))
        covered += weights[a - start : b - start + 1].sum()
    gamma = 1.0 / len(hits) if cardinality == "reciprocal" else 1.0
    return 1.0, gamma * covered / weights.sum()


def _check_range_args(alpha: float, bias: str, cardinality: str) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be between 0 and 1, not {alpha}")
    if bias not in BIASES:
        raise ParameterError(f"bias must be one of {', '.join(BIASES)}, not {bias!r}")
    if cardinality not in CARDINALITIES:
        raise ParameterError(f"cardinality must be one of {', '.join(CARDINALITIES)}, not {cardinality!r}")


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real = _binary(y_true, "labels")
    pred = _binary(y_pred, "predictions")
    if real.shape != pred.shape:
        raise DataError(f"{real.shape[0]} labels for {pred.shape[0]} predictions")
    return label_ranges(real), label_ranges(pred)


def range_recall(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    alpha: float = 0.0,
    bias: str = "flat",
    cardinality: str = "reciprocal",
) -> float:
    """Range recall: mean over labelled ranges of ``alpha * existence + (1 - alpha) * overlap``.

    ``alpha`` rewards merely touching an anomaly (operators often only need to be told
    once); ``bias="front"`` rewards catching it early. 0 when there is no labelled range.
    """
    _check_range_args(alpha, bias, cardinality)
    real, pred = _pair(y_true, y_pred)
    if len(real) == 0:
        return 0.0
    total = 0.0
    for r in real:
        existence, overlap = _overlap_reward(r, pred, bias, cardinality)
        total += alpha * existence + (1.0 - alpha) * overlap
    return total / len(real)


def range_precision(
    y_true: np.ndarray, y_pred: np.ndarray, *, bias: str = "flat", cardinality: str = "reciprocal"
) -> float:
    """Range precision: mean over predicted ranges of their overlap reward with the labels.

    There is no existence reward for precision (Tatbul et al.): a prediction that barely
    grazes an anomaly is mostly a false alarm. 0 when nothing is predicted.
    """
    _check_range_args(0.0, bias, cardinality)
    real, pred = _pair(y_true, y_pred)
    if len(pred) == 0:
        return 0.0
    return float(sum(_overlap_reward(p, real, bias, cardinality)[1] for p in pred) / len(pred))


def range_f1(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    alpha: float = 0.0,
    bias: str = "flat",
    cardinality: str = "reciprocal",
) -> float:
    """Harmonic mean of :func:`range_precision` and :func:`range_recall` (0 when both are 0)."""
    p = range_precision(y_true, y_pred, bias=bias, cardinality=cardinality)
    r = range_recall(y_true, y_pred, alpha=alpha, bias=bias, cardinality=cardinality)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


# ----------------------------------------------------------------------------------- VUS


def _merged_buffers(ranges: np.ndarray, half: int, n: int) -> np.ndarray:
    """Labelled ranges widened by ``half`` records on each side, overlapping ones merged
    (TSB-AD's ``new_sequence``: the segments whose existence is counted)."""
    out = []
    start = max(int(ranges[0, 0]) - half, 0)
    for i in range(len(ranges) - 1):
        if ranges[i, 1] + half < ranges[i + 1, 0] - half:
            out.append((start, int(ranges[i, 1]) + half))
            start = int(ranges[i + 1, 0]) - half
    out.append((start, min(int(ranges[-1, 1]) + half, n - 1)))
    return np.asarray(out, dtype=np.int64)


def _soft_labels(y: np.ndarray, ranges: np.ndarray, buffer: int) -> np.ndarray:
    """Labels with a decaying buffer: ``sqrt(1 - d / buffer)`` at distance ``d <= buffer // 2``
    before and after each range, contributions summed then capped at 1 (TSB-AD's ``sequencing``)."""
    n = y.shape[0]
    soft = y.astype(np.float64)
    half = buffer // 2
    if half == 0:
        return soft
    for s, e in ranges:
        after = np.arange(e + 1, min(e + half + 1, n))
        soft[after] += np.sqrt(1.0 - (after - e) / buffer)
        before = np.arange(max(s - half, 0), s)
        soft[before] += np.sqrt(1.0 - (s - before) / buffer)
    return np.minimum(soft, 1.0)


@dataclass(frozen=True)
class VUS:
    """Volume under the range-ROC and range-PR surfaces, and the per-buffer areas behind them."""

    roc: float
    pr: float
    roc_by_buffer: np.ndarray = field(repr=False)
    pr_by_buffer: np.ndarray = field(repr=False)


def vus(y_true: np.ndarray, scores: np.ndarray, *, max_buffer: int, n_thresholds: int = 250) -> VUS:
    """VUS-ROC and VUS-PR of ``scores`` against 0/1 labels, as TSB-AD computes them.

    For each buffer length ``b`` in ``0..max_buffer`` the labels get a soft buffer of
    ``b // 2`` records on each side of every range; at each of ``n_thresholds`` thresholds
    (the sorted scores at evenly spaced ranks) a buffer record counts as a true positive
    with its soft weight only when it is predicted, recall is multiplied by the share of
    (buffered) ranges touched, and the ROC and PR areas are integrated; VUS is their mean
    over buffer lengths. TSB-AD reports it with ``max_buffer = 2 * sliding_window``, the
    series' estimated period. The per-threshold sums are cumulative sums over the records
    sorted by score, so the cost is ``O(n log n + max_buffer * n)``.
    """
    y = _binary(y_true, "labels")
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise DataError(f"{y.shape[0]} labels for {s.shape[0]} scores")
    if not np.isfinite(s).all():
        raise DataError("scores must be finite to compute VUS")
    if max_buffer < 0 or n_thresholds < 1:
        raise ParameterError("max_buffer must be >= 0 and n_thresholds >= 1")
    n = y.shape[0]
    ranges = label_ranges(y)
    if not y.any() or y.all():
        raise DataError("VUS needs both normal and anomalous records")

    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    thresholds = sorted_scores[np.linspace(0, n - 1, n_thresholds).astype(int)]
    # records predicted at each threshold: all with score >= threshold
    n_pred = np.searchsorted(-sorted_scores, -thresholds, side="right")
    last = n_pred - 1
    positives = float(y.sum())
    anomaly_hits = np.cumsum(y[order])[last].astype(np.float64)

    buffers = np.arange(max_buffer + 1)
    roc = np.empty(buffers.size)
    pr = np.empty(buffers.size)
    for b in buffers:
        soft = _soft_labels(y, ranges, int(b))
        buffer_weight = np.where(y == 1, 0.0, soft)
        buffer_hits = np.cumsum(buffer_weight[order])[last]
        segments = _merged_buffers(ranges, int(b) // 2, n)
        seg_max = np.array([s[a : e + 1].max() for a, e in segments])
        existence = (seg_max[None, :] >= thresholds[:, None]).sum(axis=1) / len(segments)

        true_pos = anomaly_hits + buffer_hits
        p_new = positives + buffer_hits / 2.0
        recall = np.minimum(true_pos / p_new, 1.0)
        tpr = np.concatenate(([0.0], recall * existence, [1.0]))
        fpr = np.concatenate(([0.0], (n_pred - true_pos) / (n - p_new), [1.0]))
        precision = true_pos / n_pred
        roc[b] = float(np.dot(np.diff(fpr), (tpr[1:] + tpr[:-1]) / 2.0))
        pr[b] = float(np.dot(np.diff(tpr[:-1]), precision))
    return VUS(roc=float(roc.mean()), pr=float(pr.mean()), roc_by_buffer=roc, pr_by_buffer=pr)


def vus_pr(y_true: np.ndarray, scores: np.ndarray, *, max_buffer: int, n_thresholds: int = 250) -> float:
    """VUS-PR (see :func:`vus`): TSB-AD's headline metric, robust to small misalignments."""
    return vus(y_true, scores, max_buffer=max_buffer, n_thresholds=n_thresholds).pr


def vus_roc(y_true: np.ndarray, scores: np.ndarray, *, max_buffer: int, n_thresholds: int = 250) -> float:
    """VUS-ROC (see :func:`vus`)."""
    return vus(y_true, scores, max_buffer=max_buffer, n_thresholds=n_thresholds).roc


# ----------------------------------------------------------------------------------- NAB


@dataclass(frozen=True)
class NabProfile:
    """Weights of one NAB application profile (``config/profiles.json``)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


NAB_PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": NabProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": NabProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}
#: NAB ignores detections in the first 15% of each series (at most 750 records): a detector
#: must be allowed to learn before it is judged.
NAB_PROBATION_FRACTION = 0.15


def nab_probation_length(n_records: int, fraction: float = NAB_PROBATION_FRACTION) -> float:
    """Records not scored at the start of a series: ``min(floor(f * n), f * 5000)`` as in NAB."""
    return min(math.floor(fraction * n_records), fraction * 5000)


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's reward curve ``2 * sigmoid(-5 x) - 1``, and -1 beyond ``x > 3``.

    ``x = -1`` is a window's first record (0.9866, the best reward), ``x = 0`` its end (0),
    positive ``x`` measures how far after a window a false positive falls.
    """
    x = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, value)


_MAX_TP = float(scaled_sigmoid(-1.0))


@dataclass(frozen=True)
class NabSeries:
    """One series ready for NAB scoring: its scores and, per record, the reward NAB gives a
    detection there before the profile weights (``unit``) and the window it falls in.

    ``window`` is -1 outside windows and -2 in the probationary period (never scored).
    """

    name: str
    scores: np.ndarray = field(repr=False)
    windows: tuple[tuple[int, int], ...]
    window: np.ndarray = field(repr=False)
    unit: np.ndarray = field(repr=False)

    @property
    def n_windows(self) -> int:
        return len(self.windows)

    @property
    def n_scorable_windows(self) -> int:
        return int(np.unique(self.window[self.window >= 0]).size)


def prepare_nab_series(
    name: str,
    scores: np.ndarray,
    windows: Sequence[tuple[int, int]],
    *,
    probation_fraction: float = NAB_PROBATION_FRACTION,
) -> NabSeries:
    """Precompute NAB's per-record rewards for a series (windows as inclusive record indices).

    Inside a window of width ``w`` ending at ``e``, a detection at ``i`` earns
    ``S(-(e - i + 1) / w) / S(-1)`` (1 at the first record, falling towards 0 at the end);
    outside, a detection costs ``S((i - e') / (w' - 1))`` after the previous window (``e'``,
    ``w'``; nearly nothing just after it, the full cost far from it) and the full cost -1
    when no window precedes it. A one-record window has no ``w' - 1`` to scale by (NAB
    divides by zero there); the records after it cost the full -1.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    n = s.shape[0]
    if np.isnan(s).any():
        raise DataError(f"{name}: anomaly scores contain NaN")
    bounds = [(int(a), int(b)) for a, b in windows]
    previous_end = -1
    for a, b in bounds:
        if not 0 <= a <= b < n:
            raise DataError(f"{name}: window [{a}, {b}] is outside the series' {n} records")
        if a <= previous_end:
            raise DataError(f"{name}: windows must be sorted and must not overlap")
        previous_end = b
    idx = np.arange(n)
    window = np.full(n, -1, dtype=np.int64)
    unit = np.full(n, -1.0)
    for k, (a, b) in enumerate(bounds):
        width = b - a + 1
        inside = slice(a, b + 1)
        window[inside] = k
        unit[inside] = scaled_sigmoid(-(b - idx[inside] + 1) / width) / _MAX_TP
        stop = bounds[k + 1][0] if k + 1 < len(bounds) else n
        after = idx[b + 1 : stop]
        if after.size:
            with np.errstate(divide="ignore"):
                position = (after - b) / float(width - 1) if width > 1 else np.full(after.size, np.inf)
            unit[b + 1 : stop] = scaled_sigmoid(position)
    probation = nab_probation_length(n, probation_fraction)
    window[idx < probation] = -2
    return NabSeries(name=name, scores=s, windows=tuple(bounds), window=window, unit=unit)


def _weighted(series: NabSeries, profile: NabProfile) -> np.ndarray:
    return np.where(series.window >= 0, series.unit * profile.tp_weight, series.unit * profile.fp_weight)


@dataclass(frozen=True)
class NabCounts:
    """Raw NAB score of a series (or a sum of series) at one threshold, with NAB's counts of
    scored records (``tp``/``fn``: detected / missed records inside windows)."""

    score: float
    tp: int
    tn: int
    fp: int
    fn: int

    def __add__(self, other: NabCounts) -> NabCounts:
        return NabCounts(
            self.score + other.score,
            self.tp + other.tp,
            self.tn + other.tn,
            self.fp + other.fp,
            self.fn + other.fn,
        )


def nab_score_series(series: NabSeries, profile: NabProfile, threshold: float) -> NabCounts:
    """Raw NAB score of one series when every record scoring ``>= threshold`` is a detection.

    Each window contributes the reward of its earliest detection, or ``-fn_weight`` when it
    has none; each detection outside windows adds its (negative) false-positive cost.
    """
    scored = series.window != -2
    detected = (series.scores >= threshold) & scored
    weighted = _weighted(series, profile)
    in_window = series.window >= 0
    score = float(weighted[detected & ~in_window].sum())
    for k in np.unique(series.window[in_window]):
        members = series.window == k
        hits = detected & members
        score += float(weighted[hits].max()) if hits.any() else -profile.fn_weight
    tp = int((detected & in_window).sum())
    fp = int((detected & ~in_window).sum())
    fn = int((in_window & ~detected).sum())
    tn = int((scored & ~in_window & ~detected).sum())
    return NabCounts(score=score, tp=tp, tn=tn, fp=fp, fn=fn)


@dataclass(frozen=True)
class NabSweep:
    """Corpus raw score for every threshold worth trying, highest threshold first.

    The first entry is ``+inf`` (no detection at all); then each distinct score value.
    """

    thresholds: np.ndarray
    totals: np.ndarray

    def best(self, tolerance: float = 1e-9) -> tuple[float, float]:
        """The highest threshold reaching the best total (NAB keeps the first of equal scores
        in its descending sweep)."""
        top = float(self.totals.max())
        k = int(np.flatnonzero(self.totals >= top - tolerance)[0])
        return float(self.thresholds[k]), float(self.totals[k])


def nab_sweep(corpus: Sequence[NabSeries], profile: NabProfile) -> NabSweep:
    """Score the whole corpus at every threshold in one pass (NAB's ``calcScoreByThreshold``).

    Records of all series are sorted by score, highest first; lowering the threshold past a
    record adds its false-positive cost, or raises its window's reward to the record's when
    it is earlier than the window's earliest detection so far. Cumulative sums give the
    total at every threshold in ``O(n log n)``.
    """
    scores, weights, window = [], [], []
    offset = 0
    for series in corpus:
        keep = series.window != -2
        scores.append(series.scores[keep])
        weights.append(_weighted(series, profile)[keep])
        w = series.window[keep]
        window.append(np.where(w >= 0, w + offset, -1))
        offset += series.n_windows
    s = np.concatenate(scores) if scores else np.zeros(0)
    v = np.concatenate(weights) if weights else np.zeros(0)
    w = np.concatenate(window) if window else np.zeros(0, dtype=np.int64)
    n_windows = int(np.unique(w[w >= 0]).size)
    base = -profile.fn_weight * n_windows
    if s.size == 0:
        return NabSweep(np.array([np.inf]), np.array([base]))

    order = np.argsort(-s, kind="stable")
    s, v, w = s[order], v[order], w[order]
    increment = np.where(w < 0, v, 0.0)
    members = np.flatnonzero(w >= 0)
    grouped = members[np.argsort(w[members], kind="stable")]
    cuts = np.flatnonzero(np.diff(w[grouped])) + 1
    for group in np.split(grouped, cuts):
        if group.size == 0:
            continue
        running = np.maximum.accumulate(np.maximum(v[group], -profile.fn_weight))
        increment[group] += running - np.concatenate(([-profile.fn_weight], running[:-1]))
    totals = base + np.cumsum(increment)
    last_of_value = np.concatenate((np.flatnonzero(np.diff(s) != 0), [s.size - 1]))
    return NabSweep(
        thresholds=np.concatenate(([np.inf], s[last_of_value])),
        totals=np.concatenate(([base], totals[last_of_value])),
    )


def nab_normalise(raw: float, null: float, perfect: float) -> float | None:
    """``100 * (raw - null) / (perfect - null)``: 0 for the null detector, 100 for the perfect one
    (None where the two coincide: a part of the corpus without windows)."""
    if perfect == null:
        return None
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class NabResult:
    """One detector on one corpus under one profile: NAB's ``final_results.json`` entry and the
    per-series rows of its ``<detector>_<profile>_scores.csv``."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    score: float | None
    per_series: dict[str, NabCounts]

    def subset(self, names: Sequence[str], corpus: Mapping[str, NabSeries]) -> tuple[float, float | None]:
        """Raw and normalised score of some series (a category) at the corpus threshold."""
        profile = NAB_PROFILES[self.profile]
        raw = sum(self.per_series[name].score for name in names)
        null = -profile.fn_weight * sum(corpus[name].n_scorable_windows for name in names)
        perfect = profile.tp_weight * sum(corpus[name].n_windows for name in names)
        return raw, nab_normalise(raw, null, perfect)


def nab_score_corpus(
    corpus: Sequence[NabSeries], profile: NabProfile, *, threshold: float | None = None
) -> NabResult:
    """NAB's optimise-then-score for one profile; ``threshold=None`` optimises it on ``corpus``.

    The null baseline is every window missed; the perfect score is ``tp_weight`` per window
    (NAB's ``runner.normalize``).
    """
    if threshold is None:
        threshold, _ = nab_sweep(corpus, profile).best()
    per_series = {series.name: nab_score_series(series, profile, threshold) for series in corpus}
    raw = float(sum(c.score for c in per_series.values()))
    null = -profile.fn_weight * sum(series.n_scorable_windows for series in corpus)
    perfect = profile.tp_weight * sum(series.n_windows for series in corpus)
    return NabResult(
        profile=profile.name,
        threshold=float(threshold),
        raw=raw,
        null=null,
        perfect=perfect,
        score=nab_normalise(raw, null, perfect),
        per_series=per_series,
    )
