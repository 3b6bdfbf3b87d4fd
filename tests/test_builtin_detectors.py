"""The core's own numpy detectors: orientation, edge cases, and HBOS by hand."""

from __future__ import annotations

import numpy as np
import pytest

from adcore.builtin.detectors import HBOS, Mahalanobis, RobustZScore


@pytest.fixture
def planted():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 4))
    X[:10] += 6.0
    return X


@pytest.mark.parametrize("factory", [HBOS, RobustZScore, Mahalanobis], ids=lambda f: f.__name__)
def test_planted_outliers_score_highest(factory, planted):
    scores = factory().fit(planted).decision_function(planted)
    assert scores.shape == (500,)
    assert set(np.argsort(-scores)[:10]) == set(range(10))


def test_hbos_by_hand():
    X = np.array([[0.0], [0.0], [0.0], [1.0]])  # 2 bins: heights 3 and 1 -> normalised 1 and 1/3
    model = HBOS(n_bins=2, alpha=0.1).fit(X)
    np.testing.assert_allclose(model.heights_, [[1.0, 1 / 3]])
    scores = model.decision_function(np.array([[0.0], [1.0], [0.5], [10.0]]))
    np.testing.assert_allclose(scores[:2], [-np.log(1.1), -np.log(1 / 3 + 0.1)])
    assert scores[3] == pytest.approx(-np.log(0.1))  # far outside the range: empty bin


def test_constant_features_do_not_divide_by_zero():
    X = np.ones((50, 3))
    X[:, 2] = np.arange(50)
    for factory in (HBOS, RobustZScore, Mahalanobis):
        scores = factory().fit(X).decision_function(X)
        assert np.isfinite(scores).all()


def test_robust_z_aggregates():
    X = np.array([[0.0, 0.0], [1.0, -1.0], [-1.0, 1.0], [2.0, 2.0], [-2.0, -2.0]])
    model = RobustZScore().fit(X)
    z = np.abs(X / (1.4826 * 1.0))
    np.testing.assert_allclose(model.decision_function(X), z.max(axis=1))
    np.testing.assert_allclose(RobustZScore("mean").fit(X).decision_function(X), z.mean(axis=1))
    np.testing.assert_allclose(RobustZScore("l2").fit(X).decision_function(X), np.linalg.norm(z, axis=1))


def test_mahalanobis_matches_definition(planted):
    model = Mahalanobis().fit(planted)
    diff = planted - planted.mean(axis=0)
    inv = np.linalg.inv(np.cov(planted, rowvar=False))
    expected = np.sqrt(np.einsum("ij,jk,ik->i", diff, inv, diff))
    np.testing.assert_allclose(model.decision_function(planted), expected, rtol=1e-8)
