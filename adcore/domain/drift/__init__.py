"""Drift detection for the streaming service: is the data still like what the model was trained on?

The service scores records in micro-batches, calls ``update`` on a detector after each one
and turns every returned :class:`DriftSignal` into a ``drift.detected`` event (which may
trigger retraining, followed by ``reset(new_reference)``). Four detectors, by name:

- ``"ks"`` (:class:`KSDrift`): two-sample Kolmogorov-Smirnov, window vs reference; any change
  of distribution; per feature with a Bonferroni correction for 2-D input.
- ``"psi"`` (:class:`PSIDrift`): population stability index, window vs reference.
- ``"adwin"`` (:class:`ADWIN`): adaptive windowing on the score stream; mean changes, no
  reference needed, delay of a few dozen records.
- ``"page-hinkley"`` (:class:`PageHinkley`): cumulative-sum test for mean shifts.

All are numpy-only; detections do not depend on how the stream is cut into batches for the
two sequential detectors (the window tests run at most once per batch by design).
"""

from __future__ import annotations

import inspect
from typing import Any

from adcore.domain.drift._common import DriftDetector, DriftSignal
from adcore.domain.drift.sequential import ADWIN, PageHinkley
from adcore.domain.drift.windowed import KSDrift, PSIDrift, kolmogorov_sf, ks_statistic
from adcore.errors import ParameterError

__all__ = [
    "ADWIN",
    "DRIFT_DETECTORS",
    "DriftDetector",
    "DriftSignal",
    "KSDrift",
    "PSIDrift",
    "PageHinkley",
    "create_drift_detector",
    "kolmogorov_sf",
    "ks_statistic",
]

DRIFT_DETECTORS: dict[str, type] = {
    "ks": KSDrift,
    "psi": PSIDrift,
    "adwin": ADWIN,
    "page-hinkley": PageHinkley,
}


def create_drift_detector(
    name: str, *, feature_names: list[str] | None = None, **params: Any
) -> DriftDetector:
    """Build a detector by name from configuration, with every mistake a ``ParameterError``.

    ``feature_names`` is used by the per-feature tests (``ks``, ``psi``) to name the drifted
    feature and ignored by the score-stream detectors, so the service can pass it whatever
    detector is configured. Parameters are checked against the constructor's signature, so
    a typo in a config file is reported with the accepted names rather than as a TypeError.
    """
    cls = DRIFT_DETECTORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ParameterError(
            f"unknown drift detector {name!r}; choose one of: {', '.join(sorted(DRIFT_DETECTORS))}"
        )
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) for drift detector {name!r}: {', '.join(unknown)}; "
            f"accepted: {', '.join(p for p in accepted if p != 'feature_names')}"
        )
    if "feature_names" in accepted:
        params["feature_names"] = feature_names
    return cls(**params)
