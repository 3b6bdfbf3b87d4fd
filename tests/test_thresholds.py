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
