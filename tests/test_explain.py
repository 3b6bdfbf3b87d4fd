"""Explanations single out the feature that makes a row anomalous."""

from __future__ import annotations

import numpy as np
import pytest

import adcore
from adcore.domain.detector import Detector
from adcore.errors import ParameterError
from adcore.services.explain import explain, perturbation_attributions


@pytest.fixture
def planted():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 5))
    X[:10, 3] += 9.0  # rows 0-9 are anomalous because of feature 3 only
    X[10:20, 1] -= 9.0  # rows 10-19 because of feature 1
    return X


@pytest.mark.parametrize("algo", ["core:hbos", "core:mad", "core:mahalanobis"])
def test_planted_feature_is_top(planted, algo):
    det = Detector(algo).fit(planted)
    names = ["a", "b", "c", "d", "e"]
    out = explain(det, planted[:20], feature_names=names, top=2)
    assert [next(iter(e)) for e in out[:10]] == ["d"] * 10
    assert [next(iter(e)) for e in out[10:20]] == ["b"] * 10
    assert all(len(e) == 2 for e in out)


def test_attribution_is_score_drop_by_hand(planted):
    det = Detector("core:mad").fit(planted)
    row = planted[:1]
    attr = perturbation_attributions(det, row, det.feature_medians_)
    for j in range(5):
        moved = row.copy()
        moved[0, j] = det.feature_medians_[j]
        expected = det.decision_function(row)[0] - det.decision_function(moved)[0]
        assert attr[0, j] == pytest.approx(expected)


def test_detect_attaches_explanations_to_anomalies(planted):
    result = adcore.detect(planted, algo="core:mad", contamination=0.05, explain=1)
    anomalies = result.anomalies
    assert anomalies and all(a.explanation is not None and len(a.explanation) == 1 for a in anomalies)
    by_index = {a.index: a.explanation for a in anomalies}
    assert all(next(iter(by_index[i])) == "x3" for i in range(10) if i in by_index)
    assert "explanation" in result.to_dict()["anomalies"][0]


def test_bad_arguments(planted):
    det = Detector("core:hbos").fit(planted)
    with pytest.raises(ParameterError, match="engine"):
        explain(det, planted[:2], engine="lime")
    with pytest.raises(ParameterError, match="top"):
        explain(det, planted[:2], top=0)
    with pytest.raises(ParameterError, match="feature names"):
        explain(det, planted[:2], feature_names=["a"])
    assert explain(det, planted[:0]) == []
