"""seq-autoencoder: one score per row, and a planted anomalous segment found."""

from __future__ import annotations

import adcore
import numpy as np
from torch_support import FAST

from adcore_torch.sequence import SequenceAutoEncoder, coverage, window_starts


def series(n: int = 1200, seed: int = 0) -> np.ndarray:
    """Two noisy periodic channels: a machine's normal cycle."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.c_[np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 30)] + rng.normal(scale=0.05, size=(n, 2))


def test_coverage_counts_the_windows_holding_each_row() -> None:
    np.testing.assert_array_equal(coverage(6, 3), [1, 2, 3, 3, 2, 1])
    np.testing.assert_array_equal(coverage(3, 3), [1, 1, 1])
    np.testing.assert_array_equal(coverage(10, 4, 3), [1, 1, 1, 2, 1, 1, 2, 1, 1, 1])
    np.testing.assert_array_equal(window_starts(10, 4, 4), [0, 4, 6])  # the last window ends on the last row
    np.testing.assert_array_equal(window_starts(10, 4, 9), [0, 4, 6])  # stride capped at the window


def test_finds_a_planted_segment() -> None:
    X = series(800)
    X[500:520, 0] *= -1  # the first sensor runs in anti-phase for 20 steps: values normal, shape not
    params = {**FAST, "epochs": 30, "batch_size": 32, "window": 16, "stride": 2, "latent_dim": 8}
    scores = adcore.Detector("torch:seq-autoencoder", random_state=0, **params).fit(X).decision_scores_
    assert scores.shape == (800,)
    top = np.argsort(scores)[-20:]
    assert np.mean((top >= 490) & (top < 530)) >= 0.7, sorted(top)
    assert scores[500:520].mean() > 3 * np.median(scores)


def test_lstm_learns_and_scores_every_row() -> None:
    detector = SequenceAutoEncoder(architecture="lstm", random_state=0, window=8, **{**FAST, "epochs": 4})
    detector.fit(series(200))
    assert detector.history_["train_loss"][-1] < detector.history_["train_loss"][0]
    assert detector.decision_scores_.shape == (200,) and np.isfinite(detector.decision_scores_).all()


def test_series_edges_are_not_scored_as_anomalies() -> None:
    detector = SequenceAutoEncoder(random_state=0, window=16, **{**FAST, "epochs": 10}).fit(series(400))
    scores = detector.decision_scores_
    assert scores[:8].mean() < 2 * np.median(scores) and scores[-8:].mean() < 2 * np.median(scores)


def test_one_score_per_row_also_when_shorter_than_a_window() -> None:
    detector = SequenceAutoEncoder(random_state=0, window=16, **FAST).fit(series(200))
    for n in (1, 5, 16, 17, 123):
        scores = detector.decision_function(series(n, seed=1))
        assert scores.shape == (n,) and np.isfinite(scores).all()
    tiny = SequenceAutoEncoder(random_state=0, window=16, **FAST).fit(series(5))
    assert tiny.decision_scores_.shape == (5,)


def test_scoring_batch_size_does_not_change_scores() -> None:
    detector = SequenceAutoEncoder(random_state=0, window=8, **FAST).fit(series(300))
    X = series(300, seed=2)
    reference = detector.decision_function(X)
    detector.scoring_batch_size = 24  # 3 windows per forward pass
    np.testing.assert_allclose(detector.decision_function(X), reference, rtol=1e-5, atol=1e-7)


def test_every_score_stride_covers_every_row() -> None:
    X = series(300)
    for stride in (1, 3, 8, 50):
        detector = SequenceAutoEncoder(random_state=0, window=8, score_stride=stride, **FAST).fit(X)
        assert detector.decision_scores_.shape == (300,) and np.isfinite(detector.decision_scores_).all()
