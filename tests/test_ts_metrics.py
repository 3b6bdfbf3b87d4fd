"""Time-series metrics against their definitions, on cases small enough to work by hand.

Each expected value is derived in the comment above it from the paper's formula (Tatbul et
al. 2018 for range precision/recall, Paparrizos et al. 2022 as TSB-AD computes it for VUS,
Lavin and Ahmad 2015 / numenta/NAB ``sweeper.py`` for NAB), not from the implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adcore.domain.metrics import average_precision, roc_auc
from adcore.domain.ts_metrics import (
    NAB_PROFILES,
    label_ranges,
    nab_normalise,
    nab_probation_length,
    nab_score_corpus,
    nab_score_series,
    nab_sweep,
    prepare_nab_series,
    range_f1,
    range_precision,
    range_recall,
    scaled_sigmoid,
    vus,
    vus_pr,
)
from adcore.errors import DataError, ParameterError

STANDARD = NAB_PROFILES["standard"]


def test_label_ranges_are_inclusive_runs_of_ones():
    assert label_ranges(np.array([1, 1, 0, 0, 1, 0, 1])).tolist() == [[0, 1], [4, 4], [6, 6]]
    assert label_ranges(np.zeros(4)).shape == (0, 2)


# ------------------------------------------------------------------ range precision / recall

#        index: 0  1  2  3  4  5  6  7
REAL = np.array([0, 1, 1, 1, 1, 0, 0, 0])  # one range [1, 4], |R| = 4
PRED = np.array([0, 0, 0, 1, 1, 1, 0, 0])  # one range [3, 5], overlap [3, 4]


@pytest.mark.parametrize(
    ("bias", "expected"),
    [
        # flat: 2 of the 4 records covered -> 2/4
        ("flat", 0.5),
        # front: delta = 4, 3, 2, 1 for positions 1..4; covered positions 3, 4 -> (2 + 1) / 10
        ("front", 0.3),
        # back: delta = 1, 2, 3, 4; covered 3, 4 -> (3 + 4) / 10
        ("back", 0.7),
        # middle: delta = 1, 2, 2, 1 (i <= |R|/2 -> i, else |R| - i + 1); covered -> (2 + 1) / 6
        ("middle", 0.5),
    ],
)
def test_range_recall_positional_bias(bias, expected):
    assert range_recall(REAL, PRED, bias=bias) == pytest.approx(expected)


def test_range_recall_existence_reward_and_precision():
    # alpha = 0.5: 0.5 * existence (1) + 0.5 * overlap (0.5) = 0.75
    assert range_recall(REAL, PRED, alpha=0.5) == pytest.approx(0.75)
    # alpha = 1: touching the range is enough
    assert range_recall(REAL, PRED, alpha=1.0) == pytest.approx(1.0)
    # precision: the predicted range [3, 5] has 2 of its 3 records in the anomaly -> 2/3
    assert range_precision(REAL, PRED) == pytest.approx(2 / 3)
    # F1 = 2 * (2/3) * 0.5 / (2/3 + 0.5) = 4/7
    assert range_f1(REAL, PRED) == pytest.approx(4 / 7)


def test_range_recall_cardinality_penalises_fragmented_detection():
    # two predicted ranges [1, 1] and [3, 3] inside the anomaly [1, 4]: omega = 2/4;
    # reciprocal gamma = 1/2 -> 0.25, gamma = 1 -> 0.5
    fragmented = np.array([0, 1, 0, 1, 0, 0, 0, 0])
    assert range_recall(REAL, fragmented) == pytest.approx(0.25)
    assert range_recall(REAL, fragmented, cardinality="one") == pytest.approx(0.5)
    # each predicted range lies wholly in the anomaly: precision 1 either way
    assert range_precision(REAL, fragmented) == pytest.approx(1.0)


def test_range_metrics_are_zero_without_ranges_and_reject_bad_input():
    assert range_recall(np.zeros(5), np.ones(5)) == 0.0
    assert range_precision(np.ones(5), np.zeros(5)) == 0.0
    with pytest.raises(ParameterError, match="bias"):
        range_recall(REAL, PRED, bias="sideways")
    with pytest.raises(ParameterError, match="alpha"):
        range_recall(REAL, PRED, alpha=1.5)
    with pytest.raises(DataError, match="0 or 1"):
        range_recall(REAL * 2, PRED)
    with pytest.raises(DataError, match="labels for"):
        range_recall(REAL, PRED[:-1])


# ------------------------------------------------------------------------------------ VUS


def test_vus_without_buffer_on_one_range_is_point_roc_auc_and_average_precision():
    # With no buffer and a single range, TPR is plain recall (the existence factor is 1 as
    # soon as recall is positive) and every rank is a threshold when n_thresholds = n, so
    # range-AUC reduces to the point metrics.
    rng = np.random.default_rng(3)
    y = np.zeros(60, dtype=int)
    y[20:27] = 1
    s = rng.random(60) + 0.6 * y
    result = vus(y, s, max_buffer=0, n_thresholds=60)
    assert result.roc == pytest.approx(roc_auc(y, s))
    assert result.pr == pytest.approx(average_precision(y, s))


def test_vus_hand_worked_buffer_credits_a_late_detection():
    # y = [0, 0, 1, 0, 0]; the detector fires one record late (index 3 scores highest).
    # Thresholds (n_thresholds = n): 0.9, 0.3, 0.2, 0.1, 0.0.
    # Buffers 0 and 1 (half-width 0): the anomaly is first caught at the 3rd threshold,
    #   TPR 0, 0, 1; precision 0, 0, 1/3 -> AP = 1/3.
    # Buffer 2 (half-width 1): records 1 and 3 get w = sqrt(1 - 1/2) = 0.70711.
    #   t=0.9: TP = w, P_new = 1 + w/2, recall r = w / (1 + w/2) = 0.52241, range touched
    #          -> TPR = r, precision = w
    #   t=0.3: same TPR, precision w/2
    #   t=0.2: TP = 1 + w >= P_new -> TPR 1, precision (1 + w)/3
    #   AP = r * w + (1 - r) * (1 + w)/3 = 0.64117
    # VUS-PR = (1/3 + 1/3 + 0.64117) / 3 = 0.43594
    y = np.array([0, 0, 1, 0, 0])
    s = np.array([0.0, 0.1, 0.2, 0.9, 0.3])
    result = vus(y, s, max_buffer=2, n_thresholds=5)
    assert result.pr_by_buffer == pytest.approx([1 / 3, 1 / 3, 0.6411650521])
    assert result.pr == pytest.approx(0.4359439063)
    assert vus_pr(y, s, max_buffer=2, n_thresholds=5) == result.pr


def test_vus_counts_each_range_touched():
    # Two ranges; a detector that nails the first and misses the second entirely never gets
    # TPR above 1/2 before the second range's records are predicted: its VUS-ROC stays
    # below that of a detector ranking one record of each range first.
    y = np.zeros(40, dtype=int)
    y[5:10] = 1
    y[25:30] = 1
    one_range = np.where(np.arange(40) < 10, 1.0, 0.0) * y + 0.01 * np.arange(40) / 40
    both = one_range.copy()
    both[25] = 2.0
    assert vus(y, both, max_buffer=4).roc > vus(y, one_range, max_buffer=4).roc


def test_vus_rejects_single_class_and_nan():
    with pytest.raises(DataError, match="both"):
        vus(np.zeros(10), np.arange(10.0), max_buffer=2)
    with pytest.raises(DataError, match="finite"):
        vus(np.array([0, 1, 0]), np.array([0.0, np.nan, 1.0]), max_buffer=2)


# ------------------------------------------------------------------------------------ NAB


def test_scaled_sigmoid_landmarks():
    # S(x) = 2 / (1 + e^{5x}) - 1: S(-1) = 0.98661 (window start), S(0) = 0 (window end),
    # S(0.75) = 2 / (1 + e^{3.75}) - 1 = -0.95405, and -1 beyond x = 3
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.9866142982)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(0.75)) == pytest.approx(-0.9540452602)
    assert float(scaled_sigmoid(3.5)) == -1.0


def test_probationary_period_is_fifteen_percent_capped_at_750():
    assert nab_probation_length(100) == 15
    assert nab_probation_length(4032) == 604  # floor(604.8)
    assert nab_probation_length(15833) == 750


def _series(detections, n=20, windows=((5, 9),), probation=0.0):
    scores = np.zeros(n)
    scores[list(detections)] = 1.0
    return prepare_nab_series("s", scores, windows, probation_fraction=probation)


@pytest.mark.parametrize(
    ("detections", "expected"),
    [
        # nothing detected: the window is a false negative -> -A_FN = -1
        ((), -1.0),
        # first record of the window [5, 9] (width 5): position -(9 - 5 + 1)/5 = -1 -> 1.0
        ((5,), 1.0),
        # only the first detection in a window counts
        ((5, 7), 1.0),
        # record 7: position -(9 - 7 + 1)/5 = -0.6 -> S(-0.6)/S(-1) = 0.90515/0.98661
        ((7,), 0.9174286804),
        # + a false positive at 12: (12 - 9)/(5 - 1) = 0.75 -> 0.11 * S(0.75) = -0.10494
        ((7, 12), 0.9174286804 - 0.1049449786),
        # a false positive before any window costs the full A_FP, and the window is missed
        ((2,), -1.11),
    ],
)
def test_nab_series_score_hand_worked(detections, expected):
    assert nab_score_series(_series(detections), STANDARD, 0.5).score == pytest.approx(expected)


def test_nab_matches_numenta_scoring_all_metrics_case():
    # NAB's own test (tests/integration/scorer_test.py testScoringAllMetrics): 100 records,
    # windows [30, 34] and [65, 69], detections at 30 (TP), 31 (extra TP), 37 (FP),
    # all weights 1: 1 + S((37 - 34)/4) - 1 = S(0.75) = -0.9540; counts tp 2, fp 1, fn 8.
    unit = type(STANDARD)("unit", 1.0, 1.0, 1.0)
    series = _series((30, 31, 37), n=100, windows=((30, 34), (65, 69)))
    counts = nab_score_series(series, unit, 0.5)
    assert counts.score == pytest.approx(-0.9540, abs=1e-4)
    assert (counts.tp, counts.tn, counts.fp, counts.fn) == (2, 89, 1, 8)


def test_nab_probationary_detections_are_ignored():
    # 100 records -> the first 15 are not scored: a detection at 10 is neither FP nor TP
    series = _series((10,), n=100, windows=((50, 59),), probation=0.15)
    counts = nab_score_series(series, STANDARD, 0.5)
    assert counts.score == -1.0
    assert counts.fp == 0 and counts.tn + counts.fn == 85


def test_nab_profiles_weigh_false_positives_and_negatives():
    # FP at 12 and the window missed: standard -1 + 0.11 S(0.75); low-FP doubles the FP
    # weight, low-FN doubles the miss
    fp_only = _series((12,), windows=((5, 9),))
    s_fp = 0.11 * -0.9540452602
    assert nab_score_series(fp_only, STANDARD, 0.5).score == pytest.approx(-1 + s_fp)
    low_fp = nab_score_series(fp_only, NAB_PROFILES["reward_low_FP_rate"], 0.5).score
    assert low_fp == pytest.approx(-1 + 2 * s_fp)
    low_fn = nab_score_series(fp_only, NAB_PROFILES["reward_low_FN_rate"], 0.5).score
    assert low_fn == pytest.approx(-2 + s_fp)


def test_nab_sweep_equals_scoring_at_every_threshold():
    # The one-pass sweep must agree with scoring each series at each threshold separately.
    rng = np.random.default_rng(7)
    corpus = []
    for k in range(4):
        n = 300
        scores = np.round(rng.random(n), 2)  # ties on purpose
        corpus.append(
            prepare_nab_series(f"s{k}", scores, ((100 + k, 129 + k), (200, 219)), probation_fraction=0.15)
        )
    sweep = nab_sweep(corpus, STANDARD)
    assert sweep.thresholds[0] == np.inf
    assert sweep.totals[0] == -8.0  # 8 windows missed
    for threshold, total in zip(sweep.thresholds[1::7], sweep.totals[1::7], strict=True):
        brute = sum(nab_score_series(s, STANDARD, threshold).score for s in corpus)
        assert total == pytest.approx(brute, abs=1e-9)


def test_nab_corpus_normalises_null_to_zero_and_perfect_to_hundred():
    windows = ((30, 39), (70, 79))
    perfect = np.zeros(100)
    perfect[[30, 70]] = 1.0
    null = np.zeros(100)
    for scores, expected in ((perfect, 100.0), (null, 0.0)):
        series = [prepare_nab_series("s", scores, windows)]
        result = nab_score_corpus(series, STANDARD)
        assert result.score == pytest.approx(expected)
    # perfect: threshold 1 (the highest that reaches the best total); null: nothing detected
    assert nab_score_corpus([prepare_nab_series("s", perfect, windows)], STANDARD).threshold == 1.0
    assert nab_score_corpus([prepare_nab_series("s", null, windows)], STANDARD).threshold == math.inf
    assert nab_normalise(-1.0, -2.0, 2.0) == 25.0
    assert nab_normalise(-0.5, 0.0, 0.0) is None


def test_nab_optimised_threshold_is_the_highest_of_equal_scores():
    # detections at 0.9 and 0.8 both fall in the window after its first record; lowering the
    # threshold from 0.9 to 0.8 adds a later detection in the same window: same total.
    scores = np.zeros(100)
    scores[[32, 35]] = [0.9, 0.8]
    series = [prepare_nab_series("s", scores, ((30, 39),))]
    assert nab_score_corpus(series, STANDARD).threshold == 0.9


def test_nab_rejects_bad_windows():
    with pytest.raises(DataError, match="outside"):
        prepare_nab_series("s", np.zeros(10), ((5, 12),))
    with pytest.raises(DataError, match="overlap"):
        prepare_nab_series("s", np.zeros(10), ((1, 5), (4, 8)))
    with pytest.raises(DataError, match="NaN"):
        prepare_nab_series("s", np.array([0.0, np.nan]), ())
