"""Score normalisation and combination: hand-checked numbers, fit/score consistency, the default."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adcore.domain.combination import (
    COMBINATIONS,
    DEFAULT_COMBINATION,
    DEFAULT_NORMALIZATION,
    NORMALIZATIONS,
    ScoreCombiner,
    ScoreNormalizer,
    Stacker,
    vote,
)
from adcore.errors import MissingDependencyError, NotFittedError, ParameterError

REPO = Path(__file__).resolve().parents[1]

# Training scores of three members: ties (col 0), distinct (col 1), constant (col 2).
TRAIN = np.array(
    [
        [2.0, 0.0, 5.0],
        [2.0, 10.0, 5.0],
        [6.0, 20.0, 5.0],
        [6.0, 30.0, 5.0],
    ]
)
NEW = np.array([[8.0, 15.0, 5.0], [0.0, 40.0, 7.0]])


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC by counting pairs (ties half), so the tests need no scikit-learn."""
    pos, neg = score[y == 1], score[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


# ------------------------------------------------------------------ normalisation


def test_rank_by_hand():
    norm = ScoreNormalizer("rank").fit(TRAIN)
    # Training rows: (average rank - 0.5) / n. Col 0 ties 2,2 -> rank 1.5 -> 0.25; 6,6 -> 0.75.
    np.testing.assert_allclose(
        norm.transform(TRAIN),
        [[0.25, 0.125, 0.5], [0.25, 0.375, 0.5], [0.75, 0.625, 0.5], [0.75, 0.875, 0.5]],
    )
    # New rows: beyond the training range -> 1 or 0; 15 sits between 10 and 20 -> 2/4.
    np.testing.assert_allclose(norm.transform(NEW), [[1.0, 0.5, 0.5], [0.0, 1.0, 1.0]])


def test_rank_transform_of_train_equals_the_ranks():
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(size=200), rng.integers(0, 5, size=200), rng.exponential(size=200)])
    ranks = ScoreNormalizer("rank").fit_transform(train)
    for j in range(train.shape[1]):
        col = train[:, j]
        # average rank, ties averaged, computed by brute force
        avg_rank = np.array([(col < v).sum() + ((col == v).sum() + 1) / 2 for v in col])
        np.testing.assert_allclose(ranks[:, j], (avg_rank - 0.5) / len(col))
    assert ranks.dtype == np.float64
    assert ((ranks > 0) & (ranks < 1)).all()


def test_zscore_by_hand():
    norm = ScoreNormalizer("zscore").fit(TRAIN)
    # col 0: mean 4, std 2; col 1: mean 15, std sqrt(125); col 2: std 0 -> 1, so s - 5
    np.testing.assert_allclose(norm.transform(TRAIN)[:, 0], [-1, -1, 1, 1])
    np.testing.assert_allclose(norm.transform(NEW), [[2.0, 0.0, 0.0], [-2.0, math.sqrt(5), 2.0]])


def test_minmax_by_hand_and_not_clipped():
    norm = ScoreNormalizer("minmax").fit(TRAIN)
    np.testing.assert_allclose(norm.transform(TRAIN)[:, 1], [0, 1 / 3, 2 / 3, 1])
    # 8 on [2, 6] -> 1.5 and 0 -> -0.5: new extremes stay visible; range 0 -> 1 for col 2
    np.testing.assert_allclose(norm.transform(NEW), [[1.5, 0.5, 0.0], [-0.5, 4 / 3, 2.0]])


def test_unify_is_pyods_erf_of_zscore_clipped_at_zero():
    norm = ScoreNormalizer("unify").fit(TRAIN)
    # erf(2 / sqrt 2) = 0.954499736, erf(sqrt(5) / sqrt(2)) = 0.974652681; z <= 0 -> 0
    np.testing.assert_allclose(
        norm.transform(NEW), [[0.954499736, 0.0, 0.0], [0.0, 0.974652681, 0.954499736]], atol=1e-9
    )


def test_unify_without_scipy(monkeypatch):
    with_scipy = ScoreNormalizer("unify").fit(TRAIN).transform(NEW)
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import now raises ImportError
    np.testing.assert_allclose(ScoreNormalizer("unify").fit(TRAIN).transform(NEW), with_scipy, atol=1e-12)


def test_none_is_unchanged_copy():
    norm = ScoreNormalizer("none").fit(TRAIN)
    out = norm.transform(NEW)
    np.testing.assert_array_equal(out, NEW)
    assert out is not NEW


def test_normalizer_errors():
    with pytest.raises(ParameterError, match="rank, zscore"):
        ScoreNormalizer("softmax")
    with pytest.raises(NotFittedError):
        ScoreNormalizer().transform(NEW)
    norm = ScoreNormalizer().fit(TRAIN)
    with pytest.raises(ParameterError, match="fitted on 3"):
        norm.transform(NEW[:, :2])
    with pytest.raises(ParameterError, match="2-D"):
        ScoreNormalizer().fit(np.arange(4.0))
    with pytest.raises(ParameterError, match="row 1, member column 2"):
        ScoreNormalizer("zscore").fit(np.array([[1.0, 2, 3], [1, 2, np.inf]]))
    with pytest.raises(ParameterError, match="NaN"):
        norm.transform(np.array([[1.0, np.nan, 3]]))


def test_all_normalisations_fit_on_train_only():
    """A new batch is scored against training statistics, not its own (row by row = whole batch)."""
    rng = np.random.default_rng(1)
    train, new = rng.normal(size=(50, 3)), rng.normal(size=(7, 3)) * 3
    for method in NORMALIZATIONS:
        norm = ScoreNormalizer(method).fit(train)
        whole = norm.transform(new)
        one_by_one = np.vstack([norm.transform(new[i : i + 1]) for i in range(len(new))])
        np.testing.assert_allclose(whole, one_by_one)


# -------------------------------------------------------------------- combination

N = np.array(
    [
        [0.1, 0.2, 0.9],
        [0.5, 0.4, 0.3],
        [0.7, 0.8, 0.6],
        [0.0, 1.0, 0.2],
    ]
)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("average", [0.4, 0.4, 0.7, 0.4]),
        ("max", [0.9, 0.5, 0.8, 1.0]),
        ("median", [0.2, 0.4, 0.7, 0.2]),
    ],
)
def test_simple_combinations_by_hand(method, expected):
    np.testing.assert_allclose(ScoreCombiner(method).fit(N).combine(N), expected)


def test_weighted_by_hand():
    comb = ScoreCombiner("weighted", weights=[2, 1, 1]).fit(N)
    np.testing.assert_allclose(comb.weights_, [0.5, 0.25, 0.25])
    # row 0: .5*.1 + .25*.2 + .25*.9 = .325
    np.testing.assert_allclose(comb.combine(N), [0.325, 0.425, 0.7, 0.3])


@pytest.mark.parametrize("weights", [[1, 1], [1, 1, 1, 1], [1, -1, 1], [0, 0, 0], [1, np.nan, 1], "abc"])
def test_weighted_bad_weights(weights):
    with pytest.raises(ParameterError):
        ScoreCombiner("weighted", weights=weights).fit(N)


def test_combiner_parameter_errors():
    with pytest.raises(ParameterError, match="needs weights"):
        ScoreCombiner("weighted")
    with pytest.raises(ParameterError, match="only to the 'weighted'"):
        ScoreCombiner("average", weights=[1, 1, 1])
    with pytest.raises(ParameterError, match="average, max"):
        ScoreCombiner("mean")
    with pytest.raises(ParameterError, match="n_buckets"):
        ScoreCombiner("aom", n_buckets=0)
    with pytest.raises(ParameterError, match="takes no options"):
        ScoreCombiner("max", trim=0.1)
    with pytest.raises(ParameterError, match="min_agreement"):
        ScoreCombiner("consensus", min_agremeent=0.1)
    with pytest.raises(NotFittedError):
        ScoreCombiner("max").combine(N)
    with pytest.raises(ParameterError, match="fitted on 3"):
        ScoreCombiner("max").fit(N).combine(N[:, :2])
    with pytest.raises(ParameterError, match="non-finite"):
        ScoreCombiner().fit(np.array([[1.0, np.inf], [2.0, 3.0]]))


def test_aom_moa_extreme_buckets_by_hand():
    # one bucket: aom = max of everything, moa = average; k buckets: the reverse
    np.testing.assert_allclose(ScoreCombiner("aom", n_buckets=1).fit_combine(N), [0.9, 0.5, 0.8, 1.0])
    np.testing.assert_allclose(ScoreCombiner("moa", n_buckets=1).fit_combine(N), [0.4, 0.4, 0.7, 0.4])
    # n_buckets (default 5) is capped at the 3 members
    np.testing.assert_allclose(ScoreCombiner("aom").fit_combine(N), [0.4, 0.4, 0.7, 0.4])
    np.testing.assert_allclose(ScoreCombiner("moa").fit_combine(N), [0.9, 0.5, 0.8, 1.0])


def test_aom_moa_two_buckets_follow_the_drawn_buckets():
    comb = ScoreCombiner("aom", n_buckets=2, random_state=3).fit(N)
    buckets = comb.buckets_
    assert sorted(np.concatenate(buckets).tolist()) == [0, 1, 2]
    assert sorted(len(b) for b in buckets) == [1, 2]
    expected = np.mean([N[:, b].max(axis=1) for b in buckets], axis=0)
    np.testing.assert_allclose(comb.combine(N), expected)
    moa = ScoreCombiner("moa", n_buckets=2, random_state=3).fit(N)
    np.testing.assert_allclose(moa.combine(N), np.max([N[:, b].mean(axis=1) for b in buckets], axis=0))


def test_aom_moa_deterministic_with_random_state():
    rng = np.random.default_rng(0)
    train, new = rng.random((30, 6)), rng.random((5, 6))
    for method in ("aom", "moa"):
        a = ScoreCombiner(method, n_buckets=3, random_state=42).fit(train)
        b = ScoreCombiner(method, n_buckets=3, random_state=42).fit(train)
        assert [x.tolist() for x in a.buckets_] == [x.tolist() for x in b.buckets_]
        np.testing.assert_array_equal(a.combine(new), b.combine(new))
        # buckets are fixed at fit: scoring twice, or row by row, gives the same answer
        np.testing.assert_array_equal(a.combine(new), np.concatenate([a.combine(r[None]) for r in new]))
    partitions = {
        tuple(
            tuple(b.tolist()) for b in ScoreCombiner("aom", n_buckets=3, random_state=s).fit(train).buckets_
        )
        for s in range(10)
    }
    assert len(partitions) > 1  # the seed matters


def test_consensus_by_hand_two_members():
    train = np.array([[0.1, 0.2], [0.2, 0.1], [0.3, 0.4], [0.4, 0.3]])
    comb = ScoreCombiner("consensus").fit(train)
    # Spearman of ranks (1,2,3,4) and (2,1,4,3): 1 - 6 * 4 / (4 * 15) = 0.6, both ways
    np.testing.assert_allclose(comb.agreement_, [0.6, 0.6])
    np.testing.assert_allclose(comb.weights_, [0.5, 0.5])
    # tail probabilities (n - i) / (n + 1): col 0 .8 .6 .4 .2, col 1 .6 .8 .2 .4;
    # score = -log(min_j p_j / w_j) = -log(2 * min p)
    np.testing.assert_allclose(comb.combine(train), -np.log([1.2, 1.2, 0.4, 0.4]))
    # 0.25 is mid-way in col 0: p = 0.5 -> -log(2 * 0.5) = 0. A new row at 0.9, beyond the
    # training max 0.4: p = 0.5 / (n + 1) * exp(-(0.9 - 0.4) / scale), where the tail scale
    # is the mean excess of the top 3 over the 4th largest: (.1 + .2 + .3) / 3 = 0.2
    np.testing.assert_allclose(
        comb.combine(np.array([[0.25, 0.0], [0.9, 0.0]])), [0.0, -np.log(2 * 0.1) + 0.5 / 0.2]
    )


def test_consensus_keeps_ordering_beyond_the_training_range():
    scores, _ = _planted(n=500, n_anomalies=20)
    norm = ScoreNormalizer("zscore").fit(scores)
    comb = ScoreCombiner().fit(norm.transform(scores))
    far = np.tile(scores.max(axis=0), (4, 1))
    far[:, 1] *= [1.01, 1.5, 2.0, 4.0]  # member 1 (100 * view, positive here) further and further out
    combined = comb.combine(norm.transform(far))
    assert (np.diff(combined) > 0).all()
    assert combined[0] > comb.combine(norm.transform(scores)).max()


def test_fitted_objects_pickle():
    scores, _ = _planted(n=300, n_anomalies=10)
    norm = ScoreNormalizer().fit(scores)
    comb = ScoreCombiner().fit(norm.transform(scores))
    norm2, comb2 = pickle.loads(pickle.dumps((norm, comb)))
    np.testing.assert_array_equal(
        comb2.combine(norm2.transform(scores)), comb.combine(norm.transform(scores))
    )


def test_consensus_ignores_monotone_normalisation():
    rng = np.random.default_rng(2)
    raw = np.column_stack([rng.normal(size=100), rng.exponential(size=100) * 50, rng.random(100)])
    scores = {
        m: ScoreCombiner().fit_combine(ScoreNormalizer(m).fit_transform(raw))
        for m in ("rank", "zscore", "none")
    }
    np.testing.assert_allclose(scores["rank"], scores["zscore"])
    np.testing.assert_allclose(scores["rank"], scores["none"])


def _planted(n: int = 2000, n_anomalies: int = 80, seed: int = 0):
    """Four noisy views of one outlyingness (on different scales) and a fifth of pure noise."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[:n_anomalies] = 1
    latent = np.abs(rng.normal(size=n)) + 2.5 * y
    views = [latent + s * rng.normal(size=n) for s in (0.5, 0.8, 1.0, 1.3)]
    members = [np.exp(views[0]), 100 * views[1], views[2] ** 3, -1 / (5 + views[3])]
    return np.column_stack([*members, rng.random(n)]), y


def test_default_combiner_downweights_a_noise_member():
    assert DEFAULT_COMBINATION in COMBINATIONS and DEFAULT_NORMALIZATION in NORMALIZATIONS
    scores, y = _planted()
    norm = ScoreNormalizer(DEFAULT_NORMALIZATION).fit_transform(scores)
    comb = ScoreCombiner().fit(norm)
    assert comb.method == DEFAULT_COMBINATION
    w = comb.weights_
    assert w.sum() == pytest.approx(1.0)
    # its agreement is ~0 +- 1/sqrt(n) against ~0.4 for the informative members
    assert w[4] < 0.05 and w[4] < 0.25 * w[:4].min(), w
    ensemble = comb.combine(norm)
    # the noise costs the default almost nothing, unlike the average and maximum of ranks
    without_noise = ScoreCombiner().fit_combine(norm[:, :4])
    assert auc(y, ensemble) > auc(y, without_noise) - 0.01
    ranks = ScoreNormalizer("rank").fit_transform(scores)
    assert auc(y, ensemble) > auc(y, ScoreCombiner("average").fit_combine(ranks))
    assert auc(y, ensemble) > auc(y, ScoreCombiner("max").fit_combine(ranks))
    assert auc(y, ensemble) > np.mean([auc(y, scores[:, j]) for j in range(4)])


def test_consensus_min_agreement_drops_members():
    scores, _ = _planted()
    norm = ScoreNormalizer().fit_transform(scores)
    comb = ScoreCombiner("consensus", min_agreement=0.99).fit(norm)
    np.testing.assert_allclose(comb.weights_, np.full(5, 0.2))  # nobody passes: equal weights
    comb = ScoreCombiner("consensus", min_agreement=0.2).fit(norm)
    assert comb.weights_[4] == 0.0 and (comb.weights_[:4] > 0).all()


def test_consensus_single_member_and_constant_member():
    col = np.array([[3.0], [1.0], [2.0]])
    comb = ScoreCombiner().fit(col)
    np.testing.assert_allclose(comb.weights_, [1.0])
    assert np.argsort(comb.combine(col)).tolist() == [1, 2, 0]
    with_constant = np.column_stack([col, col * 2, np.ones(3)])
    comb = ScoreCombiner().fit(with_constant)
    assert comb.weights_[2] == 0.0


# ------------------------------------------------------------------------- vote


def test_vote():
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(vote(labels), [1, 0, 1, 0])
    np.testing.assert_array_equal(vote(labels, min_votes=1), [1, 1, 1, 0])
    np.testing.assert_array_equal(vote(labels, min_votes=3), [0, 0, 1, 0])
    np.testing.assert_array_equal(vote(np.array([[1, 1, 0, 0], [1, 1, 1, 0]])), [0, 1])  # tie stays normal
    np.testing.assert_array_equal(vote(np.array([[True, False]])), [0])
    for bad in (dict(labels=labels, min_votes=0), dict(labels=labels, min_votes=4)):
        with pytest.raises(ParameterError, match="min_votes"):
            vote(bad["labels"], min_votes=bad["min_votes"])
    with pytest.raises(ParameterError, match="0 \\(normal\\) or 1"):
        vote(np.array([[1, 2]]))
    with pytest.raises(ParameterError, match="2-D"):
        vote(np.array([1, 0]))


# ----------------------------------------------------------------------- Stacker


def test_stacker_learns_to_ignore_a_useless_member():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(5)
    n = 600
    y = (rng.random(n) < 0.05).astype(int)
    good = y * 2.0 + rng.normal(size=n)
    useless = rng.normal(size=n)
    norm = ScoreNormalizer().fit_transform(np.column_stack([useless, good]))
    labels = np.full(n, -1.0)
    labelled = np.concatenate([np.flatnonzero(y == 1)[:8], np.flatnonzero(y == 0)[:30]])
    labels[labelled] = y[labelled]
    labels[np.flatnonzero(labels == -1)[:50]] = np.nan  # NaN is "unknown" too
    stacker = Stacker(random_state=0).fit(norm, labels)
    assert stacker.n_labelled_ == {"anomaly": 8, "normal": 30}
    assert abs(stacker.coef_[0]) < stacker.coef_[1]
    proba = stacker.combine(norm)
    assert proba.shape == (n,) and ((proba >= 0) & (proba <= 1)).all()
    assert auc(y, proba) > auc(y, norm[:, 0]) + 0.2
    assert auc(y, proba) > auc(y, ScoreCombiner("average").fit_combine(norm))


def test_stacker_needs_both_classes():
    norm = ScoreNormalizer().fit_transform(np.random.default_rng(0).random((20, 2)))
    only_normal = np.array([0] * 5 + [-1] * 15)
    with pytest.raises(ParameterError, match=r"no anomaly \(y=1\)"):
        Stacker().fit(norm, only_normal)
    with pytest.raises(ParameterError, match=r"no normal \(y=0\)"):
        Stacker().fit(norm, np.array([1] * 3 + [np.nan] * 17))
    with pytest.raises(ParameterError, match=r"no anomaly .* and no normal"):
        Stacker().fit(norm, np.full(20, -1))
    with pytest.raises(ParameterError, match="got 2"):
        Stacker().fit(norm, np.array([2] + [0] * 19))
    with pytest.raises(ParameterError, match="19 labels for 20 rows"):
        Stacker().fit(norm, np.zeros(19))
    with pytest.raises(ParameterError, match="C must be"):
        Stacker(C=0)
    with pytest.raises(NotFittedError):
        Stacker().combine(norm)


def test_stacker_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # import now raises ImportError
    norm = np.array([[0.1, 0.2], [0.9, 0.8], [0.2, 0.3]])
    with pytest.raises(MissingDependencyError, match="scikit-learn"):
        Stacker().fit(norm, np.array([0, 1, -1]))


def test_import_needs_only_numpy():
    code = (
        "import sys, adcore.errors; before = set(sys.modules); import adcore.domain.combination; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "bad = new & {'scipy', 'sklearn', 'pandas', 'pyod'}; assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
