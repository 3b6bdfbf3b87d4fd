"""The detector protocol and the wrapper that makes any detector a full citizen.

A plugin's detector needs only ``fit(X, y=None)`` and ``decision_function(X)`` (higher
= more anomalous). :class:`Detector` wraps it with what every user expects from a
PyOD/scikit-learn estimator: parameter validation, thresholds, ``labels_``,
``predict``/``predict_proba``, input checks, and ``get_params``/``set_params`` so that
``sklearn.base.clone`` and ``Pipeline`` work. Following scikit-learn, the constructor
stores its arguments unchanged and all validation happens in ``fit``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from adcore.errors import DataError, NotFittedError, ParameterError, SchemaMismatchError
from adcore.thresholds import check_contamination, compute_threshold, parse_threshold

_OWN_PARAMS = ("algorithm", "contamination", "threshold", "random_state")


@runtime_checkable
class DetectorProtocol(Protocol):
    """What a plugin's detector must provide."""

    def fit(self, X: np.ndarray, y: Any = None) -> Any: ...

    def decision_function(self, X: np.ndarray) -> np.ndarray: ...


def as_matrix(X: Any, *, what: str = "X") -> tuple[np.ndarray, list[str] | None]:
    """Validate input into a finite float64 matrix; keep DataFrame column names."""
    from adcore.data import Dataset

    is_frame = type(X).__module__.startswith("pandas") and hasattr(X, "columns")
    dataset = Dataset.from_array(X, source="dataframe" if is_frame else "array")
    return dataset.X, (list(dataset.feature_names) if is_frame else None)


class Detector:
    """An anomaly detector: any registered algorithm, with thresholds and labels.

    Parameters
    ----------
    algorithm : str or callable
        A registered name (``"core:hbos"``, ``"iforest"``) or a factory (a class with
        ``fit``/``decision_function``).
    contamination : float
        Expected share of anomalies in (0, 0.5], used by the ``contamination`` threshold
        and passed to detectors that take it (PyOD's do).
    threshold : str
        ``contamination`` (default), ``mad[:k]``, ``iqr[:k]``, ``zscore[:k]``, ``fixed:VALUE``.
    random_state : int or None
        Seed passed to detectors that take ``random_state``.
    **params
        The algorithm's own parameters (``adcore algos show NAME`` lists them).

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training data; higher means more anomalous.
    threshold_ : float
        Scores above it are labelled 1 (anomaly).
    labels_ : ndarray of shape (n_samples,)
        0/1 labels of the training data.
    estimator_ : object
        The plugin's fitted detector.
    """

    def __init__(
        self,
        algorithm: str | Callable[..., Any] = "core:hbos",
        *,
        contamination: float = 0.1,
        threshold: str = "contamination",
        random_state: int | None = None,
        **params: Any,
    ) -> None:
        self.algorithm = algorithm
        self.contamination = contamination
        self.threshold = threshold
        self.random_state = random_state
        self._param_names = list(params)
        for key, value in params.items():
            setattr(self, key, value)

    # ------------------------------------------------------------ sklearn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments, unchanged (what ``sklearn.base.clone`` rebuilds from)."""
        out = {name: getattr(self, name) for name in _OWN_PARAMS}
        out.update({name: getattr(self, name) for name in self._param_names})
        return out

    def set_params(self, **params: Any) -> Detector:
        for key, value in params.items():
            if key not in _OWN_PARAMS and key not in self._param_names:
                self._param_names.append(key)
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Detector({args})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags

        tags = Tags(estimator_type="outlier_detector", target_tags=TargetTags(required=False))
        tags.input_tags.allow_nan = False
        return tags

    _estimator_type = "outlier_detector"

    # ------------------------------------------------------------ resolution
    @property
    def algorithm_name(self) -> str:
        """The qualified name (``plugin:name``), or the factory's name for an unregistered class."""
        if callable(self.algorithm):
            return getattr(self.algorithm, "__qualname__", repr(self.algorithm))
        return self._registration().qualified_name

    def _registration(self) -> Any:
        from adcore.plugins import get_host

        return get_host().resolve("detector", str(self.algorithm))

    def params_model(self) -> type:
        """The pydantic model that validates this algorithm's parameters."""
        from adcore.params import params_model

        if callable(self.algorithm):
            factory = self.algorithm
            return params_model(self.algorithm_name, None, lambda: factory)
        reg = self._registration()
        return params_model(reg.qualified_name, reg.metadata.get("params"), reg.load)

    def _factory(self) -> Callable[..., Any]:
        return self.algorithm if callable(self.algorithm) else self._registration().load()

    def validated_params(self) -> dict[str, Any]:
        """The algorithm's parameters after validation, with contamination and seed passed on."""
        from adcore.params import validate_params

        check_contamination(self.contamination)
        parse_threshold(self.threshold)
        model = self.params_model()
        values = {name: getattr(self, name) for name in self._param_names}
        fields = model.model_fields  # type: ignore[attr-defined]
        if "contamination" in fields and "contamination" not in values:
            values["contamination"] = self.contamination
        if self.random_state is not None and "random_state" in fields and "random_state" not in values:
            values["random_state"] = self.random_state
        return validate_params(self.algorithm_name, model, values)

    # -------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, *, keep_baseline: bool = True) -> Detector:
        """Fit the wrapped detector on ``X`` (n_samples, n_features).

        ``y`` goes to detectors that learn from labels and is ignored by the rest.
        ``keep_baseline=False`` skips the per-feature training medians that explanations
        start from (a stream's unsaved refits are never explained, and the medians are a
        third of a small refit); such a detector explains only with ``reference=`` rows.
        """
        matrix, names = as_matrix(X)
        if matrix.shape[0] < 2:
            raise DataError(f"need at least 2 rows to fit a detector, got {matrix.shape[0]}")
        params = self.validated_params()
        estimator = self._factory()(**params)
        if y is None:
            estimator.fit(matrix)
        else:  # only detectors that learn from labels take y (checked lazily: fits are hot in streams)
            takes_y = "y" in inspect.signature(estimator.fit).parameters
            estimator.fit(matrix, y) if takes_y else estimator.fit(matrix)
        self.estimator_ = estimator
        self.n_features_in_ = matrix.shape[1]
        # The baseline explanations move features to; a strided sample of <= 10,000 rows keeps
        # it cheap on large fits (a full median is ~60 ms on 100,000 x 20) at negligible cost.
        if keep_baseline:
            self.feature_medians_ = np.median(matrix[:: max(1, matrix.shape[0] // 10_000)], axis=0)
        elif hasattr(self, "feature_medians_"):
            del self.feature_medians_  # a previous fit's medians would describe other data
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        train_scores = getattr(estimator, "decision_scores_", None)
        if train_scores is None:
            train_scores = estimator.decision_function(matrix)
        self.decision_scores_ = self._check_scores(train_scores, matrix.shape[0])
        self.threshold_ = compute_threshold(self.decision_scores_, self.threshold, self.contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        self._sorted_train_scores = np.sort(self.decision_scores_)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"this {self.algorithm_name} detector is not fitted yet: call fit first")

    def _check_scores(self, scores: Any, n_rows: int) -> np.ndarray:
        out = np.asarray(scores, dtype=np.float64).reshape(-1)
        if out.shape[0] != n_rows:
            raise ParameterError(
                f"{self.algorithm_name} returned {out.shape[0]} scores for {n_rows} rows; "
                "decision_function must return one score per row"
            )
        return out

    def _check_input(self, X: Any) -> np.ndarray:
        self._check_fitted()
        matrix, names = as_matrix(X)
        if matrix.shape[1] != self.n_features_in_:
            raise SchemaMismatchError(
                f"X has {matrix.shape[1]} features, but the detector was fitted with {self.n_features_in_}"
            )
        fitted_names = getattr(self, "feature_names_in_", None)
        if names is not None and fitted_names is not None and list(names) != list(fitted_names):
            diff = [f"{a!r}!={b!r}" for a, b in zip(names, fitted_names, strict=False) if a != b]
            raise SchemaMismatchError(
                f"feature names differ from those seen in fit ({', '.join(diff[:3])}); "
                "pass the same columns in the same order"
            )
        return matrix

    # -------------------------------------------------------------- scoring
    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X``, shape (n_samples,); higher means more anomalous."""
        matrix = self._check_input(X)
        return self._check_scores(self.estimator_.decision_function(matrix), matrix.shape[0])

    score_samples = decision_function

    def predict(self, X: Any) -> np.ndarray:
        """0/1 labels: 1 where the score exceeds ``threshold_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """Probability of being normal / anomalous, shape (n_samples, 2), as PyOD.

        ``linear`` scales by the training scores' min and max (clipped to [0, 1]);
        ``unify`` is Kriegel et al.'s Gaussian scaling, erf((s - mean) / (std * sqrt 2)).
        """
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            span = train.max() - train.min()
            anomalous = np.clip((scores - train.min()) / (span if span > 0 else 1.0), 0.0, 1.0)
        elif method == "unify":
            std = train.std() or 1.0
            erf = np.vectorize(math.erf, otypes=[np.float64])
            anomalous = np.clip(erf((scores - train.mean()) / (std * math.sqrt(2.0))), 0.0, 1.0)
        else:
            raise ParameterError(f"unknown probability method {method!r}; choose linear or unify")
        return np.column_stack([1.0 - anomalous, anomalous])

    def predict_confidence(self, X: Any = None) -> np.ndarray:
        """How sure each label is, in [0.5, 1]: the training-score rank on the label's side.

        A score at the threshold gives 0.5; the most extreme training score on either
        side gives 1. ``X=None`` gives the confidence of the training labels.
        """
        self._check_fitted()
        scores = self.decision_scores_ if X is None else self.decision_function(X)
        return confidence_from_scores(scores, self._sorted_train_scores, self.threshold_)


def confidence_from_scores(scores: np.ndarray, sorted_train: np.ndarray, threshold: float) -> np.ndarray:
    """Rank-based confidence used by :meth:`Detector.predict_confidence`."""
    n = sorted_train.shape[0]
    rank = np.searchsorted(sorted_train, scores, side="right") / n
    cut = np.searchsorted(sorted_train, threshold, side="right") / n
    above = scores > threshold
    out = np.empty_like(rank)
    upper = max(1.0 - cut, 1e-12)
    out[above] = 0.5 + 0.5 * np.clip((rank[above] - cut) / upper, 0.0, 1.0)
    out[~above] = 0.5 + 0.5 * np.clip((cut - rank[~above]) / max(cut, 1e-12), 0.0, 1.0)
    return out


def create_detector(algorithm: str | Callable[..., Any], /, **params: Any) -> Detector:
    """Build a :class:`Detector` and validate its parameters now (errors before any data).

    ``"a,b,c"`` is shorthand for the ``core:ensemble`` detector with those members;
    ``MEMBER.KEY`` parameters go to one member. ``contamination``, ``threshold`` and
    ``random_state`` are the wrapper's settings (see :mod:`adcore.services.spec`, the one
    builder every entry point shares). ``algorithm`` is positional-only so that a detector
    parameter of that name (PyOD's KNN has one) is refused with a ParameterError rather
    than a TypeError.
    """
    from adcore.services.spec import build_detector

    if "algorithm" in params:
        raise ParameterError(
            "'algorithm' names the detector and cannot be passed as one of its parameters "
            "(the library's default for it applies)"
        )
    return build_detector(algorithm, params)


def parse_members(algo: str) -> list[str] | None:
    """``"iforest,ecod"`` -> ``["iforest", "ecod"]``; a single name -> None.

    Lives here rather than in :mod:`adcore.ensemble` so that naming one detector never
    imports the ensemble machinery (a start-up cost on every CLI command).
    """
    names = [n.strip() for n in algo.split(",") if n.strip()]
    return names if len(names) > 1 or "," in algo else None
