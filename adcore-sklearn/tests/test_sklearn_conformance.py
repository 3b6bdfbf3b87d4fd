"""Every detector adcore-sklearn registers passes adcore's conformance kit."""

from __future__ import annotations

from adcore.testing import parametrize_with_checks, registered_detectors

DETECTORS = registered_detectors("sklearn")


def test_the_five_detectors_are_registered():
    assert [f"sklearn:{n}" for n in ("elliptic", "iforest", "lof", "ocsvm", "sgd-ocsvm")] == DETECTORS


@parametrize_with_checks(DETECTORS)
def test_sklearn_detector_conforms(subject, check):
    check(subject)
