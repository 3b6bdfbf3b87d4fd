"""The work behind each route, as plain blocking functions run in worker threads.

Each one calls the same service the CLI calls (``adcore.services.detect.detect``,
``adcore.services.models.fit``, the model store, ``adcore.services.explain``), so a request and the
equivalent command give the same scores for the same data and seed. Nothing here knows
about HTTP: the routes validate, call these off the event loop, and shape the answer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from adcore.data import Dataset
from adcore.domain.results import DetectionResult
from adcore.errors import ParameterError
from adcore.server.stores import ThreadStores
from adcore.services.registry import ModelRecord, open_store, parse_model_ref
from adcore.services.spec import DetectorSpec


def as_dataset(rows: np.ndarray, feature_names: list[str] | None) -> Dataset:
    """A request's matrix (already checked for shape and finiteness) as a validated Dataset."""
    return Dataset.from_array(rows, feature_names, source="request")


def within_request_limits(spec: DetectorSpec) -> DetectorSpec:
    """The spec a request may run: no processes of its own, one thread.

    A request runs in one of the server's worker threads, at most ``--concurrency`` at a
    time; that limit is the server's parallelism. Processes a request started (an ensemble's
    ``backend=processes``, a library's ``n_jobs``) would escape it (one request for 13 rows
    once spawned ten workers, 2.3 GB) and outlive the request (loky keeps its workers), so
    they are refused with a 400 that says why, and an ensemble fits its members one after
    another.
    """
    if spec.params.get("backend") == "processes":
        raise ParameterError(
            "backend=processes is not available over HTTP: the server fits an ensemble's members "
            "in its own worker threads (--concurrency sets how many requests run at once)"
        )
    for owner, params in [(spec.name, spec.params), *spec.member_params.items()]:
        n_jobs = params.get("n_jobs")
        if n_jobs not in (None, 1):
            raise ParameterError(
                f"{owner}: n_jobs={n_jobs!r} is not available over HTTP (only 1): parallel workers "
                "would escape the server's --concurrency limit"
            )
    if spec.is_ensemble:
        jobs = spec.params.get("jobs")
        if jobs not in (None, 1, -1):
            raise ParameterError(
                f"jobs={jobs!r} is not available over HTTP: an ensemble's members are fitted one "
                "after another within the request's worker thread"
            )
        return replace(spec, params={**spec.params, "jobs": 1})
    return spec


def detect(
    rows: np.ndarray,
    feature_names: list[str] | None,
    *,
    algorithm: str,
    params: dict[str, Any],
    contamination: float | None,
    threshold: str | None,
    seed: int | None,
    p_values: bool = False,
) -> DetectionResult:
    """What ``adcore.detect`` does, through the same spec; ``params`` never collide with its keywords.

    ``p_values``: calibrate the fit so the rows get conformal p-values (``result.p_values``).
    """
    from adcore.services.detect import fit_detect
    from adcore.services.spec import detector_spec

    spec = detector_spec(
        algorithm, params, contamination=contamination, threshold=threshold, seed=seed, draw_seed=True
    )
    detector = within_request_limits(spec).build()
    from adcore.domain.conformal import refuse_fdr_in_sample

    refuse_fdr_in_sample(detector.threshold, "/v1/detect")
    return fit_detect(detector, as_dataset(rows, feature_names), calibrate=p_values or None)


def fit(
    rows: np.ndarray,
    feature_names: list[str] | None,
    *,
    name: str,
    stores: ThreadStores,
    algorithm: str,
    params: dict[str, Any],
    contamination: float | None,
    threshold: str | None,
    seed: int | None,
) -> ModelRecord:
    """Fit and save the next version of ``name``; return its index entry."""
    from adcore.services.models import fit_spec
    from adcore.services.spec import detector_spec

    spec = detector_spec(
        algorithm, params, contamination=contamination, threshold=threshold, seed=seed, draw_seed=True
    )
    spec = within_request_limits(spec)
    with stores.use() as store:
        model = fit_spec(rows, spec, name=name, store=store, columns=feature_names)
    assert model.record is not None
    return model.record


def score(model: Any, rows: np.ndarray, feature_names: list[str] | None) -> DetectionResult:
    """Score rows with a loaded model; its schema check refuses different features."""
    return model.score(as_dataset(rows, feature_names))


def explain(
    model: Any, rows: np.ndarray, feature_names: list[str] | None, top: int | None
) -> list[dict[str, float]]:
    """One attribution dict per row, after the same schema check as scoring."""
    from adcore.domain.schema import check_schema
    from adcore.services.explain import explain as explain_service

    dataset = as_dataset(rows, feature_names)
    check_schema(model.schema, dataset.feature_names, model=model.ref or "the model")
    names = feature_names or model.schema.feature_names
    return explain_service(model.detector, dataset.X, feature_names=names, top=top)


def list_models(stores: ThreadStores, name: str | None = None) -> list[ModelRecord]:
    with stores.use() as store:
        return store.list(name)


def remove_models(stores: ThreadStores, ref: str, version: int | None) -> list[ModelRecord]:
    """Delete ``name`` (every version), ``name@v`` or ``name`` with ``version``."""
    from adcore.errors import ParameterError

    name, ref_version = parse_model_ref(ref)
    if ref_version is not None and version is not None and ref_version != version:
        raise ParameterError(f"{ref!r} and version={version} name different versions; give one")
    with stores.use() as store:
        if ref_version is None and version is None and "@" in ref:  # name@latest: that one version only
            ref_version = store.get(name).version
        return store.remove(name, ref_version if ref_version is not None else version)


READINESS_PROBE = "adcore-readiness-probe"


def check_store(store: str | None) -> None:
    """Open the store and run one index query; raises when it cannot be used."""
    opened = open_store(store)
    try:
        opened.list(READINESS_PROBE)
    finally:
        opened.close()
