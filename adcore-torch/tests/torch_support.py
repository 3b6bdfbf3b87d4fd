"""What the tests share: fast parameters, small data, one CPU thread.

A module with a name of its own rather than a ``conftest.py``: the root suite imports
names from its ``conftest`` (``from conftest import REPO``), and when suites run together
(scripts/test.sh) that name resolves to whichever ``conftest.py`` pytest loaded last.
"""

from __future__ import annotations

import os

# One intra-op thread: test runners are shared machines, where OpenMP workers spinning on a
# descheduled peer make multi-threaded steps 10-40x slower (see device.training_threads).
# The thread policy itself is tested with the environment patched (test_torch_device.py). The
# variable also reaches the CLI tests' subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

if os.environ["OMP_NUM_THREADS"] == "1":
    torch.set_num_threads(1)  # torch may have been imported before this module

#: Enough training to rank obvious outliers, little enough to keep the suite in seconds.
FAST = {"epochs": 3, "batch_size": 64, "verbose": False}


def make_rows() -> tuple[np.ndarray, np.ndarray]:
    """300 x 5 Gaussian rows, the first 10 shifted far away; labels 1 for those."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    X[:10] += 6.0
    y = np.r_[np.ones(10), np.zeros(290)]
    return X, y
