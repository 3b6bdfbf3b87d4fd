from __future__ import annotations

import numpy as np
import pytest

from adcore.domain.thresholds import check_contamination, compute_threshold, parse_threshold
from adcore.errors import ParameterError

SCORES = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0])


def test_contamination_matches_pyod_rule():
    # PyOD: percentile(scores, 100 * (1 - contamination))
    assert compute_threshold(SCORES, "contamination", 0.1) == pytest.approx(np.percentile(SCORES, 90))
    assert compute_threshold(SCORES, "contamination", 0.5) == pytest.approx(5.5)


def test_mad_by_hand():
    # median 5.5; |x - 5.5| = 4.5 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 94.5 -> MAD 2.5
    assert compute_threshold(SCORES, "mad", 0.1) == pytest.approx(5.5 + 3 * 1.4826 * 2.5)
    assert compute_threshold(SCORES, "mad:2", 0.1) == pytest.approx(5.5 + 2 * 1.4826 * 2.5)


def test_iqr_by_hand():
    q1, q3 = np.percentile(SCORES, [25, 75])  # 3.25, 7.75
    assert (q1, q3) == (3.25, 7.75)
    assert compute_threshold(SCORES, "iqr", 0.1) == pytest.approx(7.75 + 1.5 * 4.5)


def test_zscore_and_fixed():
    assert compute_threshold(SCORES, "zscore:1", 0.1) == pytest.approx(SCORES.mean() + SCORES.std())
    assert compute_threshold(SCORES, "fixed:42", 0.1) == 42.0
    assert compute_threshold(SCORES, "fixed:-1.5", 0.1) == -1.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("median", "unknown threshold method"),
        ("mad:x", "is not a number"),
        ("mad:-1", "positive"),
        ("fixed", "needs a value"),
        ("contamination:0.2", "takes no value"),
    ],
)
def test_bad_threshold_specs(spec, message):
    with pytest.raises(ParameterError, match=message):
        parse_threshold(spec)


@pytest.mark.parametrize("value", [0, -0.1, 0.51, 1.0, "abc", float("nan")])
def test_contamination_range(value):
    with pytest.raises(ParameterError, match="contamination"):
        check_contamination(value)


def test_the_contamination_threshold_from_sorted_scores_is_numpys_percentile_to_the_bit():
    """The refit fast path must label exactly as np.percentile did (ties, n=2, tiny and huge)."""
    from adcore.domain.thresholds import percentile_of_sorted

    rng = np.random.default_rng(0)
    cases = [rng.normal(size=n) for n in (2, 3, 7, 10, 101, 2000, 4097)]
    cases += [np.round(rng.normal(size=500), 1), np.full(9, 3.25), rng.exponential(size=999) * 1e12]
    cases += [np.array([-1e-300, 0.0, 1e-300]), rng.integers(0, 5, size=64).astype(np.float64)]
    for scores in cases:
        ordered = np.sort(scores)
        for contamination in (0.5, 0.3, 0.1, 0.05, 0.01, 0.001, 1e-9, 0.123456789):
            expected = float(np.percentile(scores, 100.0 * (1.0 - contamination)))
            assert percentile_of_sorted(ordered, 100.0 * (1.0 - contamination)) == expected
            got = compute_threshold(scores, "contamination", contamination, sorted_scores=ordered)
            assert got == expected and got == compute_threshold(scores, "contamination", contamination)
    for percent in (0.0, 100.0, 50.0, 99.99999):
        assert percentile_of_sorted(np.sort(cases[4]), percent) == float(np.percentile(cases[4], percent))
