"""scikit-learn's own estimator checks on every detector adcore-sklearn registers (``adcore.testing``).

scikit-learn's estimators pass them, so the adcore wrapper around each must too: every
check but the few ``adcore.testing.SKLEARN_EXCLUDED`` lists, with no expected failure.
"""

from __future__ import annotations

from adcore.testing import CHECKS, parametrize_with_sklearn_checks, registered_detectors, subject_for

DETECTORS = registered_detectors("sklearn")


def test_no_detector_declares_an_expected_sklearn_failure():
    kit_checks = {check.__name__ for check in CHECKS}
    for name in DETECTORS:
        assert set(subject_for(name).xfail_checks) <= kit_checks, name


@parametrize_with_sklearn_checks(DETECTORS)
def test_sklearn_detector_follows_sklearn_conventions(estimator, check):
    check(estimator)
