"""Out-of-range parameters and too-small data give adcore's typed errors, never a crash (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
from adcore.domain.detector import Detector
from adcore.domain.params import describe_fields, out_of_range_values
from adcore.errors import AdcoreError
from adcore.testing import check_out_of_range_refused, out_of_range_cases, registered_detectors

DETECTORS = registered_detectors("example")


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4))


def _cases() -> list:
    return [pytest.param(*case, id="{}-{}={!r}".format(*case)) for case in out_of_range_cases(DETECTORS)]


def test_maxabs_declares_a_range():
    assert out_of_range_values(Detector("example:maxabs").params_model()) == {"epsilon": [0.0]}
    rows = {r["name"]: r for r in describe_fields(Detector("example:maxabs").params_model())}
    assert rows["epsilon"]["constraint"] == "> 0"


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_out_of_range_value_is_refused_before_the_fit(name, param, value):
    message = check_out_of_range_refused(name, param, value)
    assert message.startswith(f"{name}: parameter {param!r}"), message


@pytest.mark.parametrize("n_rows", [1, 2])
@pytest.mark.parametrize("name", DETECTORS)
def test_data_too_small_is_an_adcore_error(name, n_rows):
    X = _rows(n_rows)
    try:
        detector = Detector(name).fit(X)
        scores = detector.decision_function(X)
    except AdcoreError:
        return
    assert np.all(np.isfinite(scores)), f"{name} fitted {n_rows} rows and scored {scores}"
