"""Seeded determinism on the CPU, without side effects on the caller's random state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_support import FAST, make_rows

from adcore_torch.detectors import VAE, AutoEncoder, DeepSVDD, SequenceAutoEncoder

CLASSES = [AutoEncoder, VAE, DeepSVDD, SequenceAutoEncoder]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_same_seed_same_scores_other_seed_other_scores(cls) -> None:
    rows = make_rows()
    X = rows[0]
    params = (
        {**FAST, "device": "cpu", "dropout": 0.1} if cls in (AutoEncoder, VAE) else {**FAST, "device": "cpu"}
    )
    first = cls(random_state=3, **params).fit(X)
    second = cls(random_state=3, **params).fit(X)
    np.testing.assert_array_equal(first.decision_scores_, second.decision_scores_)
    assert first.history_["train_loss"] == second.history_["train_loss"]
    other = cls(random_state=4, **params).fit(X)
    assert not np.array_equal(first.decision_scores_, other.decision_scores_)


def test_fit_leaves_the_global_random_state_and_flags_alone() -> None:
    rows = make_rows()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AutoEncoder(random_state=0, **FAST).fit(rows[0])
    assert torch.equal(torch.rand(3), expected)
    assert not torch.are_deterministic_algorithms_enabled()


def test_unseeded_fits_still_work() -> None:
    rows = make_rows()
    scores = AutoEncoder(**FAST).fit(rows[0]).decision_scores_
    assert scores.shape == (300,) and np.isfinite(scores).all()
