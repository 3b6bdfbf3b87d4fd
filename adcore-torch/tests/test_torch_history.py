"""history_: per-epoch train and validation losses, early stopping and the best epoch."""

from __future__ import annotations

import json

import numpy as np
from torch_support import FAST, make_rows

from adcore_torch.detectors import AutoEncoder, DeepSVDD


def test_history_has_one_entry_per_epoch_and_is_json() -> None:
    rows = make_rows()
    history = AutoEncoder(random_state=0, **FAST).fit(rows[0]).history_
    assert history["epochs_run"] == 3
    assert len(history["train_loss"]) == len(history["val_loss"]) == len(history["epoch_seconds"]) == 3
    assert history["n_train"] == 270 and history["n_val"] == 30
    assert history["device"] == "cpu" and history["precision"] == "fp32"
    assert 1 <= history["best_epoch"] <= 3
    json.dumps(history)


def test_training_lowers_the_loss() -> None:
    rows = make_rows()
    history = AutoEncoder(random_state=0, **{**FAST, "epochs": 15}).fit(rows[0]).history_
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_early_stopping_ends_on_the_best_epoch() -> None:
    rows = make_rows()
    detector = AutoEncoder(random_state=0, verbose=False, epochs=200, patience=2, learning_rate=0.05).fit(
        rows[0]
    )
    history = detector.history_
    assert history["stopped_early"] and history["epochs_run"] < 200
    assert history["epochs_run"] == history["best_epoch"] + 2
    best = history["val_loss"][history["best_epoch"] - 1]
    assert best == min(history["val_loss"])


def test_no_validation_split_trains_on_every_row() -> None:
    rows = make_rows()
    history = DeepSVDD(random_state=0, validation_fraction=0, **FAST).fit(rows[0]).history_
    assert history["val_loss"] == [] and history["n_train"] == 300 and not history["stopped_early"]


def test_restored_weights_are_the_best_epochs() -> None:
    rows = make_rows()
    import torch

    from adcore_torch.training import split_indices

    X = rows[0]
    detector = AutoEncoder(random_state=0, verbose=False, epochs=40, patience=3, learning_rate=0.05).fit(X)
    history = detector.history_
    assert history["best_epoch"] < history["epochs_run"]  # the last epoch was not the best
    # The split is the first draw from the seeded generator: rebuild it and recompute the loss.
    _, val_idx = split_indices(300, 0.1, torch.Generator().manual_seed(0))
    standardised = torch.from_numpy(((X - detector.mean_) / detector.scale_).astype(np.float32))
    with torch.inference_mode():
        loss = detector._batch_loss(detector.module_, standardised[val_idx]).item()
    assert np.isclose(loss, min(history["val_loss"]), rtol=1e-5)
