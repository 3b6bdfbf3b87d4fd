"""PyOD's deep detectors that take no random_state are seeded by their adapter (issue 14).

AE1SVM, ALAD, AnoGAN, MO_GAAL and SO_GAAL draw from torch's (and numpy's) global random
state: without the adapter two fits differed, ``--seed`` could not repeat a run, and the
conformance cases that depend on the draw passed or failed with the order of the tests.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import pytest
from adcore.domain.detector import Detector
from adcore.domain.params import public_fields

from adcore_pyod import catalog, curation

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("torch")

SEEDED = sorted(f"pyod:{d['name']}" for d in catalog.detectors() if d.get("adapter_params"))
X = np.random.default_rng(0).normal(size=(120, 4))


def _fit(name: str, seed: int | None) -> np.ndarray:
    params = {"stop_epochs": 2} if "gaal" in name else {"epochs": 2}
    with contextlib.redirect_stdout(io.StringIO()):
        return Detector(name, random_state=seed, **params).fit(X).decision_scores_


def test_the_unseeded_torch_detectors_get_a_random_state():
    assert SEEDED == ["pyod:ae1svm", "pyod:alad", "pyod:anogan", "pyod:mo-gaal", "pyod:so-gaal"]
    for name in SEEDED:
        entry = {d["name"]: d for d in catalog.detectors()}[name.split(":")[1]]
        assert entry["factory"] == curation.GLOBAL_SEED_ADAPTERS[entry["class_path"]]
        assert "random_state" in public_fields(Detector(name).params_model())


@pytest.mark.parametrize("name", ["pyod:so-gaal", "pyod:ae1svm"])
def test_the_same_seed_gives_the_same_scores_and_another_seed_others(name):
    first, again, other = _fit(name, 3), _fit(name, 3), _fit(name, 4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_seeded_scores_are_pyods_own_after_the_same_seeding():
    from pyod.models.so_gaal import SO_GAAL

    from adcore_pyod.adapters import seed_global_state

    seed_global_state(5)
    with contextlib.redirect_stdout(io.StringIO()):
        expected = SO_GAAL(stop_epochs=2).fit(X).decision_scores_
    np.testing.assert_allclose(_fit("pyod:so-gaal", 5), expected, rtol=1e-12, atol=0)
