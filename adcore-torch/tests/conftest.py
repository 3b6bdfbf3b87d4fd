"""Shared fixtures for adcore-torch's tests: small data, fast parameters, the CUDA switch."""

from __future__ import annotations

import os

# One intra-op thread: test runners are shared machines, where OpenMP workers spinning on a
# descheduled peer make multi-threaded steps 10-40x slower (see device.training_threads).
# The thread policy itself is tested with the environment patched (test_device.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

if os.environ["OMP_NUM_THREADS"] == "1":
    torch.set_num_threads(1)  # in case torch was imported before this file

#: Enough training to rank obvious outliers, little enough to keep the suite in seconds.
FAST = {"epochs": 3, "batch_size": 64, "verbose": False}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rows() -> tuple[np.ndarray, np.ndarray]:
    """300 x 5 Gaussian rows, the first 10 shifted far away; labels 1 for those."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    X[:10] += 6.0
    y = np.r_[np.ones(10), np.zeros(290)]
    return X, y
