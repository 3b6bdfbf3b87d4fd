"""The detector protocol and the wrapper that makes any detector a full citizen.

A plugin's detector needs only ``fit(X, y=None)`` and ``decision_function(X)`` (higher
= more anomalous). :class:`Detector` wraps it with what every user expects from a
PyOD/scikit-learn estimator: parameter validation, thresholds, ``labels_``,
``predict``/``predict_proba``, input checks, and ``get_params``/``set_params`` so that
``sklearn.base.clone`` and ``Pipeline`` work. Following scikit-learn, the constructor
stores its arguments unchanged and all validation happens in ``fit``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol, runtime_checkable

import numpy as np

from adcore.domain.conformal import (
    DEFAULT_FOLDS,
    benjamini_hochberg,
    conformal_p_values,
    cross_calibration_scores,
    jackknife_p_values,
    require_calibration,
    single_row_cut,
)
from adcore.domain.params import public_fields
from adcore.domain.thresholds import check_contamination, compute_threshold, is_fdr, parse_threshold
from adcore.errors import (
    AdcoreError,
    DataError,
    DataTypeError,
    NotFittedError,
    ParameterError,
    ParameterTypeError,
    SchemaMismatchError,
)

_OWN_PARAMS = ("algorithm", "contamination", "threshold", "random_state")
#: What a detector's library raises when the user's parameters or data are wrong (scikit-learn's
#: InvalidParameterError, numpy's LinAlgError and PyOD's checks are among their subclasses).
#: Anything else it raises is a bug and is left to surface as one.
LIBRARY_USER_ERRORS = (ValueError, TypeError)
#: Wrapper arguments that are never passed to the library, so never the parameter it blames.
_NOT_PASSED = frozenset({"algorithm", "threshold"})
_QUOTED_NAME = re.compile(r"""['"`\u2018\u2019]([A-Za-z_][A-Za-z0-9_]*)['"`\u2018\u2019]""")


@runtime_checkable
class DetectorProtocol(Protocol):
    """What a plugin's detector must provide."""

    def fit(self, X: np.ndarray, y: Any = None) -> Any: ...

    def decision_function(self, X: np.ndarray) -> np.ndarray: ...


def as_matrix(X: Any, *, what: str = "X") -> tuple[np.ndarray, list[str] | None]:
    """Validate input into a finite float64 matrix; keep a DataFrame's string column names.

    scikit-learn's conventions, with its wording where its checks look for it: 1-D input is
    refused ("Reshape your data"), as are sparse and complex data; numeric object arrays are
    converted. Column names are kept as :func:`feature_names` finds them.
    """
    if (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype == np.float64
        and X.flags.c_contiguous
        and X.size
        and np.isfinite(X).all()
    ):  # already what the checks below produce (a stream's window): skip building a Dataset
        return X, None
    from adcore.data import Dataset

    names = feature_names(X)
    is_frame = _is_frame(X)
    if not is_frame:
        _refuse_1d(X, what)
    dataset = Dataset.from_array(X, source="dataframe" if is_frame else "array")
    return dataset.X, names


def _cache_key(model: type, values: dict[str, Any], *settings: Any) -> tuple[Any, ...] | None:
    """What validated parameters depend on, when all of it is hashable (None: do not cache).

    Only plain immutable values count: a list or dict parameter could change in place.
    """
    if not all(v is None or type(v) in (str, int, float, bool) for v in (*values.values(), *settings)):
        return None
    return (model, *values.items(), *settings)


def _is_frame(X: Any) -> bool:
    return type(X).__module__.startswith("pandas") and hasattr(X, "columns")


def feature_names(X: Any) -> list[str] | None:
    """A DataFrame's column names when every one is a string, else None (scikit-learn's rule).

    A frame with pandas' default integer columns has no feature names, as in scikit-learn's
    ``feature_names_in_``; arrays and lists have none.
    """
    if not _is_frame(X):
        return None
    names = list(X.columns)
    return names if names and all(isinstance(c, str) for c in names) else None


def _refuse_1d(X: Any, what: str) -> None:
    """A 1-D input is ambiguous (one feature, or one row?): scikit-learn refuses it, and so do we."""
    if isinstance(X, np.ndarray) or (hasattr(X, "ndim") and not hasattr(X, "toarray")):  # or a Series
        ndim = X.ndim
    else:  # lists and array-likes (converted again by Dataset.from_array, which names bad cells)
        try:
            ndim = np.asarray(X).ndim
        except (ValueError, TypeError):  # ragged nested lists: Dataset.from_array says what is wrong
            return
    if ndim == 1:
        raise DataError(
            f"Expected 2D array, got 1D array instead ({what} has shape ({len(X)},)). "
            "Reshape your data either using array.reshape(-1, 1) if your data has a single feature "
            "or array.reshape(1, -1) if it contains a single sample."
        )


def library_error(
    exc: BaseException,
    algorithm: str,
    parameters: Iterable[str],
    *,
    n_rows: int | None = None,
    given: Iterable[str] = (),
) -> AdcoreError | None:
    """The typed adcore error for what a detector's library raised, or None where it is a bug.

    A ``ValueError`` or ``TypeError`` (and their subclasses) raised while a detector is built,
    fitted or scored comes from the user's parameters or data; it becomes a
    :class:`~adcore.errors.ParameterError` naming the parameter when the message quotes one
    of ``parameters`` (scikit-learn's "The 'n_estimators' parameter of ...") or shows one the
    user ``given`` with its value (scikit-learn's "n_neighbors = 100000"), else, given
    ``n_rows`` (fit and scoring), a :class:`~adcore.errors.DataError` saying the detector
    rejected the data, else a ParameterError about its parameters. A TypeError stays a
    TypeError (:class:`~adcore.errors.ParameterTypeError`, :class:`~adcore.errors.DataTypeError`).
    The message is one line: the detector's name and the first line of the library's own.
    An adcore error (an ensemble member's, already typed) and any other exception return None:
    the caller re-raises them unchanged.
    """
    if isinstance(exc, AdcoreError) or not isinstance(exc, LIBRARY_USER_ERRORS):
        return None
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    wanted = set(parameters) - _NOT_PASSED
    parameter = next((m for m in _QUOTED_NAME.findall(text) if m in wanted), None)
    if parameter is None:  # "n_neighbors = 100000": a parameter the user set, shown with its value
        shown = (g for g in set(given) - _NOT_PASSED if re.search(rf"(?<![\w.]){re.escape(g)}\s*=", text))
        parameter = next(shown, None)
    is_type = isinstance(exc, TypeError)
    error: AdcoreError
    if parameter is not None:
        cls = ParameterTypeError if is_type else ParameterError
        error = cls(f"{algorithm}: parameter {parameter!r}: {text}")
    elif n_rows is not None:
        rows = "1 row" if n_rows == 1 else f"{n_rows} rows"
        error = (DataTypeError if is_type else DataError)(f"{algorithm} rejected the data ({rows}): {text}")
    else:
        cls = ParameterTypeError if is_type else ParameterError
        error = cls(f"{algorithm} rejected its parameters: {text}")
    error.algorithm = algorithm
    error.parameter = parameter
    return error


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
        ``contamination`` (default), ``mad[:k]``, ``iqr[:k]``, ``zscore[:k]``, ``fixed:VALUE``,
        ``fdr:Q`` (Benjamini-Hochberg on conformal p-values; fit then calibrates).
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
        0/1 labels of the training data (with ``fdr:Q`` always 0: in-sample p-values are
        ranks, which Benjamini-Hochberg never rejects; ``fdr:Q`` labels new rows).
    calibration_scores_ : ndarray of shape (n_samples,)
        Sorted out-of-fold scores of the training data, the calibration set of
        :meth:`p_values` (only after ``fit(..., calibrate=True)`` or an ``fdr`` threshold).
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

        name = str(self.algorithm)
        known = self.__dict__.get("_resolved")
        if known is not None and known[0] == name:  # a fit asks three times: resolve once
            return known[1]
        registration = get_host().resolve("detector", name)
        self.__dict__["_resolved"] = (name, registration)
        return registration

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (the model store, copies) without the resolved registration.

        A registration belongs to this process's plugin host; a loaded model resolves its
        algorithm again where it is loaded.
        """
        state = self.__dict__.copy()
        state.pop("_resolved", None)
        return state

    def params_model(self) -> type:
        """The pydantic model that validates this algorithm's parameters."""
        from adcore.domain.params import params_model

        if callable(self.algorithm):
            factory = self.algorithm
            return params_model(self.algorithm_name, None, lambda: factory)
        reg = self._registration()
        model = reg.derived.get("params_model")
        if model is None:  # a stream refits every window: build the model once per registration
            model = params_model(reg.qualified_name, reg.metadata.get("params"), reg.load)
            reg.derived["params_model"] = model
        return model

    def _factory(self) -> Callable[..., Any]:
        return self.algorithm if callable(self.algorithm) else self._registration().load()

    def validated_params(self) -> dict[str, Any]:
        """The algorithm's parameters after validation, with contamination and seed passed on."""
        from adcore.domain.params import validate_params

        model = self.params_model()
        values = {name: getattr(self, name) for name in self._param_names}
        # A stream refits a fresh detector with the same parameters every window: validate once
        # per registration and parameter set (a pydantic validation is ~5% of a small refit).
        key = _cache_key(model, values, self.contamination, self.threshold, self.random_state)
        cache = None if key is None or callable(self.algorithm) else self._registration().derived
        cached = cache.get(("validated_params", key)) if cache is not None else None
        if cached is not None:
            return dict(cached)
        check_contamination(self.contamination)
        parse_threshold(self.threshold)
        fields = model.model_fields  # type: ignore[attr-defined]
        if "contamination" in fields and "contamination" not in values:
            values["contamination"] = self.contamination
        if self.random_state is not None and "random_state" in fields and "random_state" not in values:
            values["random_state"] = self.random_state
        validated = validate_params(self.algorithm_name, model, values)
        if cache is not None:
            if len(cache) > 256:  # many parameter sets (a search): keep the cache bounded
                # list(): a snapshot taken at once, as server threads may add entries meanwhile
                for stale in [
                    k for k in list(cache) if isinstance(k, tuple) and k[:1] == ("validated_params",)
                ]:
                    cache.pop(stale, None)
            cache[("validated_params", key)] = dict(validated)
        return validated

    # -------------------------------------------------------------- fitting
    def fit(
        self, X: Any, y: Any = None, *, keep_baseline: bool = True, calibrate: bool | None = None
    ) -> Detector:
        """Fit the wrapped detector on ``X`` (n_samples, n_features).

        ``calibrate=True`` (implied by an ``fdr:Q`` threshold) also keeps the calibration
        scores of conformal p-values (:meth:`p_values`): out-of-fold scores from
        :data:`~adcore.domain.conformal.DEFAULT_FOLDS` refits on the other folds
        (:mod:`adcore.domain.conformal` says why), which costs that many extra fits.

        ``y`` (any array-like, passed on as a numpy array) goes to detectors whose ``fit``
        takes it (those that learn from labels, and PyOD's, which ignore it); the others never
        see it. ``keep_baseline=False`` skips the per-feature training medians that explanations
        start from (a stream's unsaved refits are never explained, and the medians are a
        third of a small refit); such a detector explains only with ``reference=`` rows.
        """
        matrix, names = as_matrix(X)
        if matrix.shape[0] < 2:
            n = matrix.shape[0]
            raise DataError(f"need at least 2 rows to fit a detector, got {n} sample{'s' if n != 1 else ''}")
        params = self.validated_params()
        estimator = self._build(params)
        try:
            if y is not None and "y" in inspect.signature(estimator.fit).parameters:
                estimator.fit(matrix, np.asarray(y))  # as an array, whatever array-like it came as
            else:
                estimator.fit(matrix)
            train_scores = getattr(estimator, "decision_scores_", None)
            if train_scores is None:
                train_scores = estimator.decision_function(matrix)
        except LIBRARY_USER_ERRORS as exc:
            self._raise_typed(exc, params, matrix.shape[0])
        train_scores = self._check_scores(train_scores, matrix.shape[0])
        self._check_finite_training_scores(train_scores)
        sorted_scores = np.sort(train_scores)
        self.estimator_ = estimator
        self.n_features_in_ = matrix.shape[1]
        # The baseline explanations move features to; a strided sample of <= 10,000 rows keeps
        # it cheap on large fits (a full median is ~60 ms on 100,000 x 20) at negligible cost.
        if keep_baseline:
            self.feature_medians_ = _medians(matrix[:: max(1, matrix.shape[0] // 10_000)])
        elif hasattr(self, "feature_medians_"):
            del self.feature_medians_  # a previous fit's medians would describe other data
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # refitted on data without names: the old ones would lie
        self.decision_scores_ = train_scores
        self._forget_calibration()
        if calibrate or is_fdr(self.threshold):
            self._calibrate(matrix, params)
        self._set_threshold(train_scores, sorted_scores)
        self._sorted_train_scores = sorted_scores
        return self

    # ------------------------------------------------------------ calibration
    def _calibrate(self, matrix: np.ndarray, params: dict[str, Any]) -> None:
        """Out-of-fold scores of the training rows: the conformal calibration set."""
        try:
            oof = cross_calibration_scores(
                lambda: self._build(params), matrix, folds=DEFAULT_FOLDS, seed=self.random_state
            )
        except LIBRARY_USER_ERRORS as exc:
            self._raise_typed(exc, params, matrix.shape[0])
        self._keep_calibration(oof)

    def _keep_calibration(self, scores: np.ndarray) -> None:
        self.calibration_scores_ = np.sort(scores)
        self.train_p_values_ = jackknife_p_values(scores)

    def _forget_calibration(self) -> None:
        for name in ("calibration_scores_", "train_p_values_"):
            if hasattr(self, name):
                delattr(self, name)  # a previous fit's calibration would describe another model

    def _set_threshold(self, train_scores: np.ndarray, sorted_scores: np.ndarray | None = None) -> None:
        """``threshold_`` and ``labels_`` of the training rows, by the threshold rule.

        For ``fdr:Q`` the training labels are Benjamini-Hochberg's on the rows' own
        (out-of-fold) p-values, and ``threshold_`` is the score a row scored *alone* must exceed
        (its p-value <= Q); in a batch of several rows BH's cut is that or stricter.
        """
        spec = parse_threshold(self.threshold)
        if spec.method != "fdr":
            self.threshold_ = compute_threshold(
                train_scores, spec, self.contamination, sorted_scores=sorted_scores
            )
            self.labels_ = (train_scores > self.threshold_).astype(np.int64)
            return
        q = float(spec.value)  # type: ignore[arg-type]
        self.threshold_ = single_row_cut(self.calibration_scores_, q)
        self.labels_ = benjamini_hochberg(self.train_p_values_, q).astype(np.int64)

    def p_values(self, X: Any) -> np.ndarray:
        """Conformal p-values of ``X``'s rows: small means unlike the (normal) training data.

        ``(1 + #{calibration scores >= s}) / (n + 1)`` (:mod:`adcore.domain.conformal`); needs a
        fit with ``calibrate=True`` or an ``fdr`` threshold.
        """
        return self.p_values_of_scores(self.decision_function(X))

    def p_values_of_scores(self, scores: np.ndarray) -> np.ndarray:
        """:meth:`p_values` of scores already computed (the model store's and the server's path)."""
        self._check_fitted()
        return conformal_p_values(scores, require_calibration(self))

    def label_scores(self, scores: np.ndarray) -> np.ndarray:
        """0/1 labels of scores scored together: ``score > threshold_``, or BH for ``fdr:Q``."""
        spec = parse_threshold(self.threshold)
        if spec.method == "fdr":
            rejected = benjamini_hochberg(self.p_values_of_scores(scores), float(spec.value))  # type: ignore[arg-type]
            return rejected.astype(np.int64)
        return (np.asarray(scores) > self.threshold_).astype(np.int64)

    def _build(self, params: dict[str, Any]) -> Any:
        """The plugin's detector, built from validated parameters; its library's complaint typed."""
        factory = self._factory()
        try:
            return factory(**params)
        except LIBRARY_USER_ERRORS as exc:
            self._raise_typed(exc, params, None)

    def _raise_typed(self, exc: Exception, params: Iterable[str], n_rows: int | None) -> NoReturn:
        """Raise the typed adcore error for what the library raised, or ``exc`` itself, unchanged.

        Called from an ``except`` block: ``exc`` keeps its traceback, and becomes the typed
        error's ``__cause__``.
        """
        names = set(params) | set(self.get_params())
        with contextlib.suppress(Exception):  # a factory whose model cannot be built: the names we have
            names |= set(public_fields(self.params_model()))
        error = library_error(exc, self.algorithm_name, names, n_rows=n_rows, given=self._param_names)
        if error is None:
            raise exc
        raise error from exc

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"this {self.algorithm_name} detector is not fitted yet: call fit first")

    def _check_finite_training_scores(self, scores: np.ndarray) -> None:
        """A fit whose training scores are not all finite has no threshold to learn: refuse it.

        PyOD's ABOD or CD on two rows return NaN rather than raising; labels computed from a
        NaN threshold would silently call every row normal.
        """
        bad = int(np.count_nonzero(~np.isfinite(scores)))
        if bad:
            raise DataError(
                f"{self.algorithm_name} gave {bad} of {scores.shape[0]} training rows no finite score "
                "(NaN or infinity): too few rows for it, or features it cannot use (constant columns?)"
            )

    def _check_scores(self, scores: Any, n_rows: int) -> np.ndarray:
        out = np.asarray(scores, dtype=np.float64).reshape(-1)
        if out.shape[0] != n_rows:
            raise ParameterError(
                f"{self.algorithm_name} returned {out.shape[0]} scores for {n_rows} rows; "
                "decision_function must return one score per row"
            )
        return out

    def check_input(self, X: Any) -> np.ndarray:
        """``X`` as a matrix, checked as scoring checks it: fitted, then the names, then the width.

        Names first, as scikit-learn does: a frame with a column missing is told which one.
        For code that scores or explains rows through the wrapped detector itself.
        """
        self._check_fitted()
        self._check_feature_names(feature_names(X))  # before the values, as the names say more
        matrix, _ = as_matrix(X)
        if matrix.shape[1] != self.n_features_in_:
            raise SchemaMismatchError(
                f"X has {matrix.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input ({self.algorithm_name} was fitted on "
                f"{self.n_features_in_})."
            )
        return matrix

    def _check_feature_names(self, names: list[str] | None) -> None:
        """scikit-learn's rule and wording (``sklearn.utils.validation._check_feature_names``).

        Names that differ from fit's are refused: the first line says which, the lines after it
        are scikit-learn's own message. Names on one side only are warned about, as scikit-learn does.
        """
        fitted = getattr(self, "feature_names_in_", None)
        cls = type(self).__name__
        if fitted is None or names is None:
            if names is not None:
                warnings.warn(
                    f"X has feature names, but {cls} was fitted without feature names", stacklevel=4
                )
            elif fitted is not None:
                warnings.warn(
                    f"X does not have valid feature names, but {cls} was fitted with feature names",
                    stacklevel=4,
                )
            return
        fitted = list(fitted)
        if names == fitted:
            return
        unexpected = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))
        summary = [f"unseen at fit: {_shown(unexpected)}"] if unexpected else []
        summary += [f"missing: {_shown(missing)}"] if missing else []
        detail = "".join(
            f"{title}:\n{_listed(found)}"
            for title, found in (
                ("Feature names unseen at fit time", unexpected),
                ("Feature names seen at fit time, yet now missing", missing),
            )
            if found
        )
        if not detail:
            summary = ["same names in another order"]
            detail = "Feature names must be in the same order as they were in fit.\n"
        raise SchemaMismatchError(
            f"X's columns differ from those {self.algorithm_name} was fitted on ({'; '.join(summary)}). "
            f"The feature names should match those that were passed during fit.\n{detail}"
        )

    # -------------------------------------------------------------- scoring
    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X``, shape (n_samples,); higher means more anomalous."""
        return self.score_matrix(self.check_input(X))

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Scores of a matrix already validated as fit's input was (the model store's path).

        The library's own complaint is typed as in :meth:`fit`; one score per row is checked.
        """
        self._check_fitted()
        try:
            scores = self.estimator_.decision_function(matrix)
        except LIBRARY_USER_ERRORS as exc:
            self._raise_typed(exc, (), matrix.shape[0])
        scores = self._check_scores(scores, matrix.shape[0])
        self._refuse_nan_scores(scores)
        return scores

    def _refuse_nan_scores(self, scores: np.ndarray) -> None:
        """A NaN score compares below every threshold, so its row would pass as normal: refuse it.

        ``+inf`` stays (beyond every training score: label 1). Every scoring path (the CLI, the
        model store, the server, streams, which dead-letter the rows) comes through here.
        """
        bad = np.flatnonzero(np.isnan(scores))
        if bad.size:
            raise DataError(
                f"{self.algorithm_name} gave {bad.size} of {scores.shape[0]} rows no score (NaN), first "
                f"row {int(bad[0])}: values too large for it (near the float64 limit?) or features it "
                "cannot use"
            )

    score_samples = decision_function

    # ---------------------------------------------------------- online detectors
    # Passed through only when the wrapped detector has them, so ``hasattr(det, "score_partial")``
    # tells a stream whether it can learn as it scores (a property raising AttributeError is
    # what ``hasattr`` sees as absent, as scikit-learn's ``available_if`` does).
    def _wrapped_has(self, name: str) -> bool:
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, name)
        try:
            factory = self._factory()
            if isinstance(inspect.getattr_static(factory, name, None), property):
                # Whether an instance has it depends on its parameters (an ensemble of online members)
                return hasattr(self._build(self.validated_params()), name)
            return hasattr(factory, name)
        except AdcoreError:  # an unknown name or bad parameters: not online; fit will say what is wrong
            return False

    def _absent(self, name: str) -> NoReturn:
        raise AttributeError(f"{self.algorithm_name} is not an online detector: it has no {name}")

    @property
    def partial_fit(self) -> Callable[..., Detector]:
        """Learn ``X`` in order, keeping what was learned (online detectors only).

        Unfitted, it starts a fresh model and takes its threshold from the scores of ``X`` after
        learning; fitted, it keeps ``threshold_`` (refit with :meth:`fit` to recompute it).
        """
        if not self._wrapped_has("partial_fit"):
            self._absent("partial_fit")
        return self._partial_fit

    @property
    def score_partial(self) -> Callable[[Any], np.ndarray]:
        """Prequential scores: row i scored by the model that learned every earlier row, then all learned.

        Unfitted, it starts a fresh model, and its threshold comes from these scores (each
        one out of sample, unlike training scores); fitted, ``threshold_`` is kept.
        """
        if not self._wrapped_has("score_partial"):
            self._absent("score_partial")
        return self._score_partial

    @property
    def min_records(self) -> int:
        """Records an online detector needs before its scores mean anything (1 when it does not say)."""
        if not self._wrapped_has("score_partial"):
            self._absent("min_records")
        source = self.estimator_ if hasattr(self, "estimator_") else self._factory()
        value = getattr(source, "min_records", 1)
        if not isinstance(value, int) or isinstance(value, bool):  # a property: ask an instance
            value = getattr(self._build(self.validated_params()), "min_records", 1)
        return max(1, int(value))

    def _online_input(self, X: Any) -> tuple[np.ndarray, bool]:
        """``X`` checked as scoring checks it when fitted, as fit does when not; True if fresh."""
        if hasattr(self, "estimator_"):
            return self.check_input(X), False
        matrix, names = as_matrix(X)
        params = self.validated_params()
        self.estimator_ = self._build(params)
        self.n_features_in_ = matrix.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        return matrix, True

    def _partial_fit(self, X: Any, y: Any = None) -> Detector:
        matrix, fresh = self._online_input(X)
        try:
            self.estimator_.partial_fit(matrix)
            scores = self.estimator_.decision_function(matrix) if fresh else None
        except BaseException as exc:
            self._forget_if(fresh)
            if isinstance(exc, LIBRARY_USER_ERRORS):
                self._raise_typed(exc, (), matrix.shape[0])
            raise
        if scores is not None:
            self._learn_threshold(self._checked_online_scores(scores, matrix.shape[0], fresh))
        return self

    def _score_partial(self, X: Any) -> np.ndarray:
        matrix, fresh = self._online_input(X)
        try:
            scores = self.estimator_.score_partial(matrix)
        except BaseException as exc:
            self._forget_if(fresh)
            if isinstance(exc, LIBRARY_USER_ERRORS):
                self._raise_typed(exc, (), matrix.shape[0])
            raise
        scores = self._checked_online_scores(scores, matrix.shape[0], fresh)
        if fresh:
            self._learn_threshold(scores)
        return scores

    def _checked_online_scores(self, scores: Any, n_rows: int, fresh: bool) -> np.ndarray:
        try:
            out = self._check_scores(scores, n_rows)
            self._refuse_nan_scores(out)
        except AdcoreError:
            self._forget_if(fresh)
            raise
        return out

    def _forget_if(self, fresh: bool) -> None:
        """A first online call that failed leaves the wrapper unfitted, as a failed fit does."""
        if fresh:
            for name in ("estimator_", "n_features_in_", "feature_names_in_"):
                if hasattr(self, name):
                    delattr(self, name)

    def _learn_threshold(self, scores: np.ndarray) -> None:
        finite = scores[np.isfinite(scores)]
        self.decision_scores_ = scores
        self._forget_calibration()
        if is_fdr(self.threshold) and finite.size:
            # Prequential scores are out of sample already: they are the calibration set.
            self._keep_calibration(finite)
            self._set_threshold(scores)
            if finite.size < scores.size:  # the jackknife p-values cover the finite scores only
                self.labels_ = (scores > self.threshold_).astype(np.int64)
        else:
            self.threshold_ = (
                compute_threshold(finite, self.threshold, self.contamination)
                if finite.size and not is_fdr(self.threshold)
                else math.inf
            )
            self.labels_ = (scores > self.threshold_).astype(np.int64)
        self._sorted_train_scores = np.sort(scores)

    def predict(self, X: Any) -> np.ndarray:
        """0/1 labels: 1 where the score exceeds ``threshold_`` (``fdr:Q``: BH over ``X``'s rows)."""
        return self.label_scores(self.decision_function(X))

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """Probability of being normal / anomalous, shape (n_samples, 2), as PyOD.

        ``linear`` scales by the training scores' min and max (clipped to [0, 1]);
        ``unify`` is Kriegel et al.'s Gaussian scaling, erf((s - mean) / (std * sqrt 2));
        ``conformal`` is ``[p, 1 - p]`` with ``p`` the conformal p-value (:meth:`p_values`):
        the first column is the evidence for "normal", a calibrated p-value rather than a
        probability (needs a calibrated fit).
        """
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "conformal":
            p = self.p_values_of_scores(scores)
            return np.column_stack([p, 1.0 - p])
        if method == "linear":
            span = train.max() - train.min()
            anomalous = np.clip((scores - train.min()) / (span if span > 0 else 1.0), 0.0, 1.0)
        elif method == "unify":
            std = train.std() or 1.0
            erf = np.vectorize(math.erf, otypes=[np.float64])
            anomalous = np.clip(erf((scores - train.mean()) / (std * math.sqrt(2.0))), 0.0, 1.0)
        else:
            raise ParameterError(f"unknown probability method {method!r}; choose linear, unify or conformal")
        return np.column_stack([1.0 - anomalous, anomalous])

    def predict_confidence(self, X: Any = None) -> np.ndarray:
        """How sure each label is, in [0.5, 1]: the training-score rank on the label's side.

        A score at the threshold gives 0.5; the most extreme training score on either
        side gives 1. ``X=None`` gives the confidence of the training labels.
        """
        self._check_fitted()
        scores = self.decision_scores_ if X is None else self.decision_function(X)
        return self.confidence_of_scores(scores)

    def confidence_of_scores(self, scores: np.ndarray) -> np.ndarray:
        """:meth:`predict_confidence` of rows whose scores are known already."""
        self._check_fitted()
        return confidence_from_scores(scores, self._sorted_train_scores, self.threshold_)


def _shown(names: list[str], limit: int = 5) -> str:
    """Names for a one-line message: the first few, quoted."""
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(repr(n) for n in names[:limit]) + more


def _listed(names: list[str], limit: int = 5) -> str:
    """Names as scikit-learn lists them: one ``- name`` line each, at most five, then ``- ...``."""
    lines = [f"- {n}\n" for n in names[:limit]]
    return "".join(lines) + ("- ...\n" if len(names) > limit else "")


def _medians(sample: np.ndarray) -> np.ndarray:
    """Per-column medians that never overflow: ``np.median`` averages the two middle values, which
    is infinite for a column holding +-1.7e308; such columns are halved first (exact)."""
    with np.errstate(over="ignore"):
        medians = np.median(sample, axis=0)
    bad = ~np.isfinite(medians)
    if bad.any():
        medians[bad] = np.median(sample[:, bad] / 2, axis=0) * 2
    return medians


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
