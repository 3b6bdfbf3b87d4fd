"""Out-of-range parameters and too-small data give adcore's typed errors, never a crash (issue 14).

For every scikit-learn detector: each value just outside a declared range is refused
before the estimator is built, in one line naming the detector and the parameter;
scikit-learn refuses the same value (the ranges are its ``_parameter_constraints``, no
narrower); and 1 or 2 rows, or more neighbours than rows, end in an
:class:`adcore.errors.AdcoreError` (exit 2 on the CLI) or a fit with finite scores.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from adcore.domain.detector import Detector
from adcore.domain.params import describe_fields, public_fields
from adcore.errors import AdcoreError
from adcore.testing import check_out_of_range_refused, out_of_range_cases, registered_detectors

DETECTORS = registered_detectors("sklearn")


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4))


def _cases() -> list:
    return [pytest.param(*case, id="{}-{}={!r}".format(*case)) for case in out_of_range_cases(DETECTORS)]


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_out_of_range_value_is_refused_before_the_fit(name, param, value):
    message = check_out_of_range_refused(name, param, value)
    assert message.startswith(f"{name}: parameter {param!r}"), message


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_scikit_learn_itself_refuses_what_adcore_refuses(name, param, value):
    """No declared range is narrower than scikit-learn's: the estimator fails on the value too."""
    detector = Detector(name)
    estimator = detector._factory()(**{param: value})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(_rows(50))
            scores = estimator.decision_function(_rows(50))
    except Exception:
        return
    assert not np.all(np.isfinite(scores)), f"scikit-learn accepts {name} {param}={value!r}: widen the range"


def _small_data_cases() -> list:
    cases = [pytest.param(name, n, {}, id=f"{name}-{n}rows") for name in DETECTORS for n in (1, 2)]
    cases += [
        pytest.param(name, 10, {"n_neighbors": 50}, id=f"{name}-n_neighbors=50-10rows")
        for name in DETECTORS
        if "n_neighbors" in public_fields(Detector(name).params_model())
    ]
    return cases


@pytest.mark.parametrize(("name", "n_rows", "params"), _small_data_cases())
def test_data_too_small_is_an_adcore_error(name, n_rows, params):
    X = _rows(n_rows)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detector = Detector(name, random_state=0, **params).fit(X)
            scores = detector.decision_function(X)
    except AdcoreError:
        return
    assert np.all(np.isfinite(scores)), f"{name} fitted {n_rows} rows and scored {scores}"


def test_ranges_are_shown_by_algos_show():
    rows = {r["name"]: r for r in describe_fields(Detector("sklearn:iforest").params_model())}
    assert rows["n_estimators"]["constraint"] == ">= 1"
    assert rows["max_samples"]["constraint"] == "one of: auto; or int >= 1; or float in (0, 1]"
    rows = {r["name"]: r for r in describe_fields(Detector("sklearn:ocsvm").params_model())}
    assert rows["nu"]["constraint"] == "in (0, 1]"
    assert rows["gamma"]["constraint"] == "one of: scale, auto; or float >= 0"
