"""adcore-example passes adcore's conformance kit, and its detector does what it says."""

from __future__ import annotations

import adcore
import numpy as np
import pytest
from adcore.testing import parametrize_with_checks, registered_detectors

DETECTORS = registered_detectors("example")


def test_the_plugin_is_installed_and_registers_maxabs():
    assert DETECTORS == ["example:maxabs"], "install it first: pip install -e plugins/example"


@parametrize_with_checks(DETECTORS)
def test_conformance(subject, check):
    check(subject)


def test_scores_are_the_largest_robust_z_score():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    X[7] = [0.0, 0.0, 12.0]
    result = adcore.detect(X, algo="example:maxabs")
    median = np.median(X, axis=0)
    mad = 1.4826 * np.median(np.abs(X - median), axis=0) + 1e-12
    np.testing.assert_allclose(result.scores, np.abs((X - median) / mad).max(axis=1))
    assert int(np.argmax(result.scores)) == 7


def test_parameters_are_validated_before_any_data():
    from adcore.errors import ParameterError

    with pytest.raises(ParameterError, match="epsilon"):
        adcore.create_detector("example:maxabs", epsilon=0)
    with pytest.raises(ParameterError, match="did you mean 'scale'"):
        adcore.create_detector("example:maxabs", scal=False)
