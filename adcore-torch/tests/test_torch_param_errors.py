"""Out-of-range parameters and too-small data give adcore's typed errors, never a crash (issue 14).

For every deep detector: each value just outside a range its parameter model declares
(adcore_torch.params) is refused before the detector is built, in one line naming the
detector and the parameter; and 1, 2 or fewer rows than a window end in an
:class:`adcore.errors.AdcoreError` (exit 2 on the CLI) or a fit with finite scores.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from adcore.domain.detector import Detector
from adcore.domain.params import describe_fields, public_fields
from adcore.errors import AdcoreError
from adcore.testing import check_out_of_range_refused, out_of_range_cases, registered_detectors, subject_for

DETECTORS = registered_detectors("torch")


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4))


def _cases() -> list:
    return [pytest.param(*case, id="{}-{}={!r}".format(*case)) for case in out_of_range_cases(DETECTORS)]


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_out_of_range_value_is_refused_before_the_fit(name, param, value):
    message = check_out_of_range_refused(name, param, value)
    assert message.startswith(f"{name}: parameter {param!r}"), message


def _small_data_cases() -> list:
    cases = [pytest.param(name, n, {}, id=f"{name}-{n}rows") for name in DETECTORS for n in (1, 2)]
    cases += [
        pytest.param(name, 10, {"window": 32}, id=f"{name}-window=32-10rows")
        for name in DETECTORS
        if "window" in public_fields(Detector(name).params_model())
    ]
    return cases


@pytest.mark.parametrize(("name", "n_rows", "params"), _small_data_cases())
def test_data_too_small_is_an_adcore_error(name, n_rows, params):
    X = _rows(n_rows)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detector = Detector(name, random_state=0, **subject_for(name).test_params, **params).fit(X)
            scores = detector.decision_function(X)
    except AdcoreError:
        return
    assert np.all(np.isfinite(scores)), f"{name} fitted {n_rows} rows and scored {scores}"


def test_ranges_are_shown_by_algos_show():
    rows = {r["name"]: r for r in describe_fields(Detector("torch:autoencoder").params_model())}
    assert rows["epochs"]["constraint"] == "in [1, 100000]"
    assert rows["dropout"]["constraint"] == "in [0, 1)"
    assert rows["hidden_sizes"]["constraint"] == "length >= 1, items >= 1"
    assert rows["precision"]["constraint"] == "one of: auto, fp32, bf16, fp16"
