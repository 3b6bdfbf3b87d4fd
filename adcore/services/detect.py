"""The detect service: fit a detector on a dataset and describe the outcome.

The CLI's ``run``, the server's ``/v1/detect`` and the Python ``adcore.detect`` all
come through here, so they give the same scores for the same data and seed.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np

from adcore.data import Dataset
from adcore.domain.detector import Detector
from adcore.domain.results import DetectionResult
from adcore.errors import AdcoreError


def library_versions(detector: Detector | None = None) -> dict[str, str | None]:
    """Versions that make a result reproducible: adcore, the plugin, Python, numpy."""
    import adcore

    versions: dict[str, str | None] = {
        "adcore": adcore.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if detector is None or not isinstance(detector.algorithm, str):
        return versions
    from adcore.plugins import get_host

    host = get_host()
    names = [str(detector.algorithm), *(detector.get_params().get("members") or ())]
    for name in names:  # an ensemble's members may come from several plugins
        try:
            plugin = host.resolve("detector", name).plugin
        except AdcoreError:
            continue
        info = host.info(plugin)  # cheap: no hook is called
        if info is not None:
            versions[f"plugin:{plugin}"] = info.version or versions["adcore"]
    return versions


def import_detector_code(detector: Detector) -> float:
    """Import the detector's library (and its members', for an ensemble); return the seconds spent.

    Plugins register detectors lazily, so the first fit in a process pays for importing
    PyOD or torch (seconds). Done before the fit is timed, so "fit 0.4s" means the fit.
    """
    from adcore.plugins import get_host

    started = time.perf_counter()
    detector._factory()
    members = detector.get_params().get("members") if isinstance(detector.algorithm, str) else None
    for name in members or ():
        get_host().resolve("detector", name).load()
    return time.perf_counter() - started


def fit_detect(
    detector: Detector, dataset: Dataset, *, y: Any = None, calibrate: bool | None = None
) -> DetectionResult:
    """Fit ``detector`` on ``dataset`` and return scores and labels of its rows.

    ``y`` (optional, 1 / 0 / -1 unknown) reaches detectors that learn from labels,
    such as a stacking ensemble. ``metadata["fit_seconds"]`` times the fit alone;
    ``import_seconds`` is the library import that preceded it, when there was one.
    ``calibrate=True`` (implied by an ``fdr:Q`` threshold) gives the rows conformal p-values
    (``result.p_values``, from out-of-fold scores: :mod:`adcore.domain.conformal`).
    """
    from adcore.services import tracing

    with tracing.span(
        "adcore.fit", algorithm=detector.algorithm_name, rows=dataset.n_samples, features=dataset.n_features
    ):
        import_seconds = import_detector_code(detector)
        started = time.perf_counter()
        detector.fit(dataset.X, y, calibrate=calibrate)
        fit_seconds = time.perf_counter() - started
    metadata: dict[str, Any] = {
        "fit_seconds": round(fit_seconds, 6),
        "n_samples": dataset.n_samples,
        "n_features": dataset.n_features,
        "source": dataset.source,
        "threshold_method": str(detector.threshold),
        "contamination": detector.contamination,
        "random_state": detector.random_state,
        "seed": detector.random_state,
        "versions": library_versions(detector),
    }
    if import_seconds >= 0.01:
        metadata["import_seconds"] = round(import_seconds, 3)
    report = getattr(detector.estimator_, "report", None)
    if callable(report):
        metadata["ensemble"] = report()
    return DetectionResult(
        algorithm=detector.algorithm_name,
        params={k: v for k, v in detector.get_params().items() if k not in ("algorithm",)},
        scores=np.asarray(detector.decision_scores_, dtype=np.float64),
        labels=np.asarray(detector.labels_, dtype=np.int64),
        threshold=float(detector.threshold_),
        confidence_of=detector.confidence_of_scores,
        feature_names=list(dataset.feature_names),
        metadata=metadata,
        p_values=getattr(detector, "train_p_values_", None),
    )


def detect(
    X: Any,
    algo: str = "core:hbos",
    *,
    contamination: float | None = None,
    threshold: str | None = None,
    seed: int | None = None,
    feature_names: list[str] | None = None,
    explain: bool | int = False,
    **params: Any,
) -> DetectionResult:
    """Fit ``algo`` on ``X`` and score every row of it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or pandas DataFrame
        Finite numbers; DataFrame column names become feature names.
    algo : str
        ``plugin:name`` or a bare name (``adcore algos`` lists them); ``"a,b,c"`` is an
        ensemble of those detectors (``combine=``, ``normalize=``, ``MEMBER.KEY`` via
        ``**{"iforest.n_estimators": 50}``).
    contamination, threshold
        See :class:`adcore.Detector` (defaults 0.1 and ``contamination``; a ``vote``
        ensemble's threshold defaults to a majority, ``fixed:0.5``).
    seed : int, optional
        Seed passed as ``random_state``; when omitted one is drawn and recorded in
        ``result.metadata["seed"]``, so the run can be repeated.
    explain : bool or int
        Attach per-feature attributions to every anomaly
        (``result.anomalies[i].explanation``); an int keeps that many top features.
    **params
        The algorithm's own parameters.

    Returns
    -------
    DetectionResult
        ``scores`` (higher = more anomalous) and ``labels`` for every row, in order.
    """
    from adcore.services.spec import detector_spec

    spec = detector_spec(
        algo, params, contamination=contamination, threshold=threshold, seed=seed, draw_seed=True
    )
    detector = spec.build()
    from adcore.domain.conformal import refuse_fdr_in_sample

    refuse_fdr_in_sample(detector.threshold, "adcore.detect")
    dataset = X if isinstance(X, Dataset) else Dataset.from_array(X, feature_names)
    result = fit_detect(detector, dataset)
    if explain:
        explain_anomalies(result, detector, dataset.X, top=None if explain is True else int(explain))
    return result


def explain_anomalies(result: DetectionResult, detector: Detector, X: np.ndarray, *, top: int | None) -> None:
    """Fill ``result.explanations`` for the anomalous rows (one vectorised pass)."""
    from adcore.services.explain import explain

    rows = np.flatnonzero(result.labels == 1)
    if rows.size == 0:
        return
    attributions = explain(detector, X[rows], feature_names=result.feature_names or None, top=top)
    result.explanations = {int(r): a for r, a in zip(rows, attributions, strict=True)}
