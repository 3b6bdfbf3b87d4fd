"""Why a row is anomalous: per-feature attributions for any detector.

The default engine is model-agnostic and vectorised: a feature's attribution is how much
the row's score drops when that feature alone is moved to a baseline (the training
median), ``score(x) - score(x with x_j := median_j)``. All ``n_rows * n_features``
perturbed rows are scored in a few large ``decision_function`` calls, so explaining a
thousand anomalies costs about as much as scoring ``1000 * n_features`` rows.

The optional ``shap`` engine (KernelSHAP, when the ``shap`` package is installed) gives
attributions that sum to the score difference from the baseline, at a much higher cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adcore.errors import MissingDependencyError, ParameterError

ENGINES = ("perturbation", "shap")
_MAX_ROWS_PER_CALL = 200_000


def _baseline(detector: Any, reference: np.ndarray | None, n_features: int) -> np.ndarray:
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        return np.median(ref, axis=0) if ref.ndim == 2 else ref
    medians = getattr(detector, "feature_medians_", None)
    if medians is None:
        raise ParameterError("this detector keeps no training medians: pass reference= (training rows)")
    return np.asarray(medians, dtype=np.float64).reshape(n_features)


def perturbation_attributions(detector: Any, X: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Attribution matrix (n_rows, n_features): score drop when each feature goes to baseline."""
    n_rows, n_features = X.shape
    original = np.asarray(detector.decision_function(X), dtype=np.float64)
    out = np.empty((n_rows, n_features), dtype=np.float64)
    rows_per_call = max(1, _MAX_ROWS_PER_CALL // max(n_features, 1))
    for start in range(0, n_rows, rows_per_call):
        block = X[start : start + rows_per_call]
        k = block.shape[0]
        perturbed = np.repeat(block, n_features, axis=0).reshape(k, n_features, n_features)
        idx = np.arange(n_features)
        perturbed[:, idx, idx] = baseline
        scores = np.asarray(detector.decision_function(perturbed.reshape(k * n_features, n_features)))
        out[start : start + k] = original[start : start + k, None] - scores.reshape(k, n_features)
    return out


def shap_attributions(
    detector: Any, X: np.ndarray, background: np.ndarray, nsamples: int = 200
) -> np.ndarray:
    """KernelSHAP attributions against a background sample (needs the ``shap`` package)."""
    try:
        import shap
    except ModuleNotFoundError:
        raise MissingDependencyError("the shap engine needs the package 'shap': pip install shap") from None
    explainer = shap.KernelExplainer(detector.decision_function, np.atleast_2d(background))
    values = explainer.shap_values(X, nsamples=nsamples, silent=True)
    return np.asarray(values, dtype=np.float64).reshape(X.shape)


def explain(
    detector: Any,
    X: Any,
    *,
    feature_names: list[str] | None = None,
    reference: np.ndarray | None = None,
    top: int | None = None,
    engine: str = "perturbation",
) -> list[dict[str, float]]:
    """One ``{feature: attribution}`` dict per row of ``X``, largest contributions first.

    Parameters
    ----------
    detector : fitted adcore Detector (or anything with ``decision_function``)
    X : array-like (n_rows, n_features)
        The rows to explain, usually the anomalies.
    feature_names : list of str, optional
        Defaults to the detector's ``feature_names_in_`` or ``x0, x1, ...``.
    reference : array-like, optional
        Training rows (or a baseline vector); defaults to the training medians the
        detector kept at fit time.
    top : int, optional
        Keep only the ``top`` features with the largest positive attribution per row.
    engine : "perturbation" or "shap"
    """
    from adcore.domain.detector import as_matrix

    if len(X) == 0:
        return []
    check_input = getattr(detector, "check_input", None)
    if callable(check_input):  # an adcore Detector: a frame with other columns is refused, not explained
        check_input(X)
    matrix, frame_names = as_matrix(X)
    names = feature_names or frame_names
    if names is None:
        fitted = getattr(detector, "feature_names_in_", None)
        names = list(fitted) if fitted is not None else [f"x{i}" for i in range(matrix.shape[1])]
    if len(names) != matrix.shape[1]:
        raise ParameterError(f"{len(names)} feature names for {matrix.shape[1]} features")
    if top is not None and top < 1:
        raise ParameterError(f"top must be at least 1, got {top}")
    from adcore.services import tracing

    algorithm = getattr(detector, "algorithm_name", None) or type(detector).__name__
    with tracing.span(
        "adcore.explain", algorithm=algorithm, rows=matrix.shape[0], features=matrix.shape[1], engine=engine
    ):
        baseline = _baseline(detector, reference, matrix.shape[1])
        if engine == "perturbation":
            values = perturbation_attributions(detector, matrix, baseline)
        elif engine == "shap":
            background = np.atleast_2d(reference if reference is not None else baseline)
            values = shap_attributions(detector, matrix, background)
        else:
            raise ParameterError(f"unknown explanation engine {engine!r}; choose one of {', '.join(ENGINES)}")
    order = np.argsort(-values, axis=1, kind="stable")
    if top is not None:
        order = order[:, :top]
    return [{names[j]: float(values[i, j]) for j in order[i]} for i in range(matrix.shape[0])]
