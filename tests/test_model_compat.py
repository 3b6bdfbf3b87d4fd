"""Models saved by an earlier adcore keep loading and scoring the same.

``tests/data/legacy_*.adcore-model`` are artifacts written by adcore 0.1.0 as it was before
the package was split into ``domain`` and ``services`` (commit 34bf444), together with the
scores they gave then. Stored models outlive refactorings: the loader must map the classes'
old module paths to their new homes, and scoring must not depend on attributes that newer
versions set at fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adcore.services.models import Model

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["hbos", "ensemble"])
def test_an_artifact_from_an_earlier_layout_loads_and_scores_the_same(name):
    model = Model.from_bytes((DATA / f"legacy_{name}.adcore-model").read_bytes())
    rows = np.loadtxt(DATA / "legacy_rows.csv", delimiter=",", skiprows=1)
    expected = np.loadtxt(DATA / f"legacy_{name}_scores.txt")
    result = model.score(rows)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-12)
    assert model.detector.predict(rows).shape == (rows.shape[0],)
