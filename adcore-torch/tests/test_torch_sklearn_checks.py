"""scikit-learn's estimator checks on every detector adcore-torch registers (``adcore.testing``).

On the CPU and one thread, as the conformance kit runs them: the checks compare two seeded
fits to 1e-9, which CUDA kernels and racing threads do not promise.
"""

from __future__ import annotations

import torch_support  # noqa: F401 - one CPU thread for the fits
from adcore.testing import parametrize_with_sklearn_checks, registered_detectors


@parametrize_with_sklearn_checks(registered_detectors("torch"), params={"verbose": False, "device": "cpu"})
def test_torch_detector_follows_sklearn_conventions(estimator, check):
    check(estimator)
