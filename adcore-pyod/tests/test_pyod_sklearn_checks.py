"""scikit-learn's estimator checks on every detector adcore-pyod registers (``adcore.testing``).

Built with the registrations' ``test_params`` (short training for the deep models); a
detector's known failures, each one PyOD's own class shares, are declared in
``adcore_pyod.curation`` as ``xfail_checks`` beside the conformance kit's.
"""

from __future__ import annotations

import os

from adcore.testing import parametrize_with_sklearn_checks, registered_detectors

# scikit-learn's data are 10 to 40 rows: extra threads only contend. Before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@parametrize_with_sklearn_checks(registered_detectors("pyod"))
def test_pyod_detector_follows_sklearn_conventions(estimator, check):
    check(estimator)
