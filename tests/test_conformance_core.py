"""The core's own detectors pass the conformance kit they ask of every plugin."""

from __future__ import annotations

from adcore.testing import parametrize_with_checks, registered_detectors

CORE_DETECTORS = registered_detectors("core")
# detectors that cannot be built without parameters, and what the kit builds them with
NEEDS_PARAMS = {"core:ensemble": {"members": ["core:hbos", "core:mahalanobis"]}}


def test_core_registers_detectors():
    assert {"core:hbos", "core:mad", "core:mahalanobis"} <= set(CORE_DETECTORS)


@parametrize_with_checks([n for n in CORE_DETECTORS if n not in NEEDS_PARAMS])
def test_core_detector_conforms(subject, check):
    check(subject)


@parametrize_with_checks(["core:ensemble"], params=NEEDS_PARAMS["core:ensemble"])
def test_core_ensemble_conforms(subject, check):
    check(subject)
