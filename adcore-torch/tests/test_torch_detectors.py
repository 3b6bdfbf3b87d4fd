"""What each detector promises beyond the kit: its score's definition and direct use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adcore.errors import DataError, NotFittedError, SchemaMismatchError
from adcore.testing import roc_auc
from torch_support import FAST, make_rows

from adcore_torch.detectors import VAE, AutoEncoder, DeepSVDD


def test_deepsvdd_has_no_bias_and_a_centre_away_from_zero() -> None:
    rows = make_rows()
    detector = DeepSVDD(random_state=0, eps=0.1, **FAST).fit(rows[0])
    assert all("bias" not in name for name, _ in detector.module_.named_parameters())
    assert np.all(np.abs(detector.center_) >= 0.1 - 1e-7)
    standardised = torch.from_numpy(((rows[0] - detector.mean_) / detector.scale_).astype(np.float32))
    with torch.inference_mode():
        embedded = detector.module_(standardised).numpy()
    expected = ((embedded - detector.center_) ** 2).sum(axis=1)
    np.testing.assert_allclose(detector.decision_scores_, expected, rtol=1e-4)


def test_vae_elbo_adds_the_kl_term_to_the_reconstruction() -> None:
    rows = make_rows()
    X = rows[0]
    elbo = VAE(random_state=0, **FAST).fit(X)
    recon = VAE(random_state=0, score="reconstruction", **FAST).fit(X)
    assert np.all(elbo.decision_scores_ >= recon.decision_scores_)  # same weights, KL >= 0
    assert np.array_equal(elbo.decision_function(X), elbo.decision_function(X))  # no sampling when scoring


@pytest.mark.parametrize("cls", [AutoEncoder, VAE], ids=lambda c: c.__name__)
def test_planted_rows_rank_on_top(cls) -> None:
    rows = make_rows()
    X, y = rows
    scores = cls(random_state=0, **{**FAST, "epochs": 10}).fit(X).decision_scores_
    assert roc_auc(y, scores) > 0.99


def test_direct_use_errors_are_adcore_errors() -> None:
    rows = make_rows()
    detector = AutoEncoder(**FAST)
    with pytest.raises(NotFittedError):
        detector.decision_function(rows[0])
    detector.fit(rows[0])
    with pytest.raises(SchemaMismatchError, match="5"):
        detector.decision_function(rows[0][:, :3])
    bad = rows[0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        detector.decision_function(bad)
    assert detector.decision_function(rows[0][:0]).shape == (0,)


def test_constant_features_do_not_break_scaling() -> None:
    rows = make_rows()
    X = np.c_[rows[0], np.full(300, 7.0)]
    scores = AutoEncoder(random_state=0, **FAST).fit(X).decision_scores_
    assert np.isfinite(scores).all()
