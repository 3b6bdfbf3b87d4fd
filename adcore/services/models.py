"""Train once, score for months: :class:`Model`, :func:`fit` and :func:`load_model`.

A :class:`Model` is a fitted :class:`~adcore.domain.detector.Detector` plus the schema of its
training data (feature count and names, read options) and the statistics users audit
(threshold, training-score quantiles). ``save`` puts it in a model store
(:mod:`adcore.services.registry`) as a new version; ``load_model("payments@3")`` gets it back after
checking the artifact's SHA-256, and ``score`` refuses data whose features differ from
the training data's instead of returning silently wrong scores.

>>> model = adcore.fit("train.csv", algo="core:hbos", seed=0)      # doctest: +SKIP
>>> record = model.save("payments")                                 # doctest: +SKIP
>>> adcore.load_model("payments").score("today.csv").labels         # doctest: +SKIP

Artifacts are pickles: load models only from a store you trust (docs/models.md).
"""

from __future__ import annotations

import io
import os
import pickle
import time
from typing import Any

import numpy as np

from adcore.data import Dataset, read_dataset
from adcore.domain.detector import Detector, confidence_from_scores
from adcore.domain.results import DetectionResult
from adcore.domain.schema import TrainingSchema, check_schema
from adcore.errors import MissingDependencyError, NotFittedError, StoreError
from adcore.io.jsonio import jsonable
from adcore.services import tracing
from adcore.services.registry import (
    ModelRecord,
    ModelStore,
    check_model_name,
    open_store,
    parse_model_ref,
    sha256_hex,
    verify_artifact,
)

ARTIFACT_FORMAT = "adcore.model/1"
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


class Model:
    """A fitted detector with its training schema; saved and loaded through a model store.

    Attributes
    ----------
    detector : Detector
        The fitted detector (``threshold_``, ``decision_scores_``...).
    schema : TrainingSchema
        Feature count, names (``None`` when the training data had none), dtypes, rows,
        and how files were read at fit (``columns``, ``header``).
    record : ModelRecord or None
        The index entry once saved or loaded (``record.ref`` is ``name@version``).
    """

    def __init__(
        self,
        detector: Detector,
        schema: TrainingSchema,
        *,
        name: str | None = None,
        store: str | ModelStore | None = None,
        fit_seconds: float | None = None,
        record: ModelRecord | None = None,
    ) -> None:
        if not hasattr(detector, "threshold_"):
            raise NotFittedError("Model needs a fitted detector: call adcore.fit(...)")
        self.detector = detector
        self.schema = schema
        self.name = check_model_name(name) if name is not None else None
        self.store = store
        self.fit_seconds = fit_seconds
        self.record = record

    # ------------------------------------------------------------ properties
    @property
    def algorithm(self) -> str:
        """The qualified name it was fitted with, as recorded (a later ADCORE_PREFER cannot change it)."""
        return self.record.algorithm if self.record is not None else self.detector.algorithm_name

    @property
    def threshold(self) -> float:
        """Scores above it are labelled anomalous (learned at fit, stored with the model)."""
        return float(self.detector.threshold_)

    @property
    def ref(self) -> str | None:
        """``name@version`` once saved or loaded, else ``None``."""
        return self.record.ref if self.record is not None else None

    def __repr__(self) -> str:
        what = self.ref or (self.name and f"{self.name} (unsaved)") or "unsaved"
        return f"Model({what}, {self.algorithm}, {self.schema.n_features} features)"

    # ---------------------------------------------------------------- saving
    def to_record(self, name: str) -> ModelRecord:
        """The index entry this model would get (version, checksum and key filled by the store)."""
        det = self.detector
        train = np.asarray(det.decision_scores_, dtype=np.float64)
        n_anomalies = int(np.count_nonzero(det.labels_ == 1))
        metrics: dict[str, Any] = {
            "n_anomalies": n_anomalies,
            "anomaly_rate": n_anomalies / max(int(train.shape[0]), 1),
            "score_mean": float(train.mean()),
            "score_std": float(train.std()),
        }
        if self.fit_seconds is not None:
            metrics["fit_seconds"] = round(self.fit_seconds, 6)
        from adcore.services.detect import library_versions

        return ModelRecord(
            name=check_model_name(name),
            version=0,
            algorithm=self.algorithm,
            params=jsonable({k: v for k, v in det.get_params().items() if k != "algorithm"}),
            threshold=self.threshold,
            threshold_method=str(det.threshold),
            contamination=float(det.contamination),
            seed=det.random_state,
            n_samples=self.schema.n_samples,
            n_features=self.schema.n_features,
            feature_names=self.schema.feature_names,
            dtypes=list(self.schema.dtypes),
            read_options=dict(self.schema.read_options),
            score_quantiles=dict(
                zip([f"{q:g}" for q in QUANTILES], np.quantile(train, QUANTILES).tolist(), strict=True)
            ),
            metrics=metrics,
            versions=library_versions(det),
        )

    def to_bytes(self) -> bytes:
        """The artifact: a pickle of the detector and schema (protocol 5)."""
        payload = {"format": ARTIFACT_FORMAT, "detector": self.detector, "schema": self.schema}
        try:
            return pickle.dumps(payload, protocol=5)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            # The library's fitted object cannot be serialised (PyOD's MO_GAAL holds classes
            # defined inside a function): nothing the store can keep. Say so, before any write.
            raise StoreError(
                f"{self.algorithm} cannot be saved: its fitted object is not picklable "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "use 'adcore run' to fit and score in one step"
            ) from exc

    def save(self, name: str | None = None, *, store: str | ModelStore | None = None) -> ModelRecord:
        """Store this model as the next version of ``name`` and return its index entry.

        ``name`` defaults to the one given to :func:`fit`; ``store`` to the fit's store,
        then ``$ADCORE_STORE``, then the embedded store under ``$ADCORE_HOME``.
        """
        target = name or self.name
        if target is None:
            raise StoreError("give the model a name: model.save('payments')")
        with tracing.span("adcore.store.save", algorithm=self.algorithm, model=target):
            draft = self.to_record(target)
            data = self.to_bytes()
            draft = draft.replace(sha256=sha256_hex(data), size=len(data))
            with _opened(store if store is not None else self.store) as opened:
                self.record = opened.add(draft, data)
            tracing.set_attributes(model=self.record.ref, bytes=len(data))
        self.name = target
        return self.record

    # --------------------------------------------------------------- scoring
    def as_dataset(self, X: Any, *, nan_policy: str = "error") -> Dataset:
        """Read ``X`` (path, Dataset, array, DataFrame) the way the training data was read."""
        if isinstance(X, Dataset):
            return X
        if isinstance(X, (str, os.PathLike)):
            opts = self.schema.read_options
            return read_dataset(
                X, columns=opts.get("columns"), header=opts.get("header"), nan_policy=nan_policy
            )
        is_frame = type(X).__module__.startswith("pandas") and hasattr(X, "columns")
        columns = self.schema.read_options.get("columns") if is_frame else None
        return Dataset.from_array(X, columns, nan_policy=nan_policy)

    def score_dataset(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Scores and labels (vs the stored threshold) of a dataset's rows, after the schema check."""
        with tracing.span(
            "adcore.score",
            algorithm=self.algorithm,
            model=self.ref,
            rows=dataset.n_samples,
            features=dataset.n_features,
        ):
            check_schema(self.schema, dataset.feature_names, model=self.ref or "the model")
            if dataset.n_samples == 0:
                return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
            det = self.detector
            scores = det.score_matrix(dataset.X)  # the library's complaints typed, as at fit
            _check_scoreable(scores, self.ref or self.algorithm)
            return scores, det.label_scores(scores)  # fdr:Q: Benjamini-Hochberg over these rows

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """How sure each label is, in [0.5, 1] (see :meth:`Detector.predict_confidence`)."""
        return confidence_from_scores(scores, self.detector._sorted_train_scores, self.threshold)

    def score(self, X: Any, *, nan_policy: str = "error") -> DetectionResult:
        """Score new data with the stored detector and threshold (no refit).

        ``X``: a file path, array, DataFrame or :class:`~adcore.data.Dataset` with the
        training data's features. Labels are 1 where the score exceeds the stored
        threshold. Raises ``SchemaMismatchError`` when the features differ.
        """
        started = time.perf_counter()
        dataset = self.as_dataset(X, nan_policy=nan_policy)
        scores, labels = self.score_dataset(dataset)
        return DetectionResult(
            algorithm=self.algorithm,
            params=jsonable({k: v for k, v in self.detector.get_params().items() if k != "algorithm"}),
            scores=scores,
            labels=labels,
            threshold=self.threshold,
            confidence=self.confidence(scores),
            feature_names=list(dataset.feature_names),
            p_values=(  # a calibrated model (fitted with fdr:Q) gives each row its p-value
                self.detector.p_values_of_scores(scores)
                if getattr(self.detector, "calibration_scores_", None) is not None
                else None
            ),
            metadata={
                "model": self.ref,
                "score_seconds": round(time.perf_counter() - started, 6),
                "n_samples": dataset.n_samples,
                "n_features": dataset.n_features,
                "source": dataset.source,
            },
        )

    # --------------------------------------------------------------- loading
    @classmethod
    def from_bytes(cls, data: bytes, *, record: ModelRecord | None = None) -> Model:
        """Unpickle an artifact. Only call this on bytes that passed :func:`verify_artifact`."""
        what = record.ref if record is not None else "the model"
        try:
            payload = _ArtifactUnpickler(io.BytesIO(data)).load()  # verified first (verify_artifact)
        except ModuleNotFoundError as exc:
            plugin = (record.algorithm.split(":")[0] if record else "") or exc.name
            raise MissingDependencyError(
                f"{what} needs the module {exc.name!r}, which is not installed; install the plugin that "
                f"provides {record.algorithm if record else plugin!r}"
            ) from exc
        except Exception as exc:
            saved = f" (saved with adcore {record.versions.get('adcore')})" if record else ""
            raise StoreError(f"cannot load {what}{saved}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
            raise StoreError(f"{what}: the artifact is not an adcore model ({ARTIFACT_FORMAT})")
        return cls(
            payload["detector"], payload["schema"], name=record.name if record else None, record=record
        )


def _check_scoreable(scores: np.ndarray, what: str) -> None:
    """Refuse NaN scores: a NaN compares below every threshold, so the row would pass as normal.

    ``+inf`` stays: it is beyond every training score and is labelled 1 (JSON shows ``null``).
    Every path (score, explain, the server, streams) scores through here, so all refuse alike.
    """
    bad = np.flatnonzero(np.isnan(scores))
    if bad.size:
        from adcore.errors import DataError

        raise DataError(
            f"{what} gave {bad.size} of {scores.shape[0]} rows no score (NaN), first row {int(bad[0])}: "
            "values too large for it (near the float64 limit?) or features it cannot use"
        )


#: Where classes that earlier versions pickled live now: stored models outlive refactorings.
#: (0.1.0 kept these modules at the top of the package.)
MOVED_MODULES = {
    "adcore.detector": "adcore.domain.detector",
    "adcore.params": "adcore.domain.params",
    "adcore.thresholds": "adcore.domain.thresholds",
    "adcore.results": "adcore.domain.results",
    "adcore.schema": "adcore.domain.schema",
    "adcore.metrics": "adcore.domain.metrics",
    "adcore.combination": "adcore.domain.combination",
    "adcore.events": "adcore.domain.events",
    "adcore.drift": "adcore.domain.drift",
    "adcore.detection": "adcore.services.detect",
    "adcore.models": "adcore.services.models",
    "adcore.registry": "adcore.services.registry",
    "adcore.explain": "adcore.services.explain",
    "adcore.scoring": "adcore.services.scoring",
    "adcore.streaming": "adcore.services.streaming",
    "adcore.ensemble": "adcore.builtin.ensemble",
}


class _ArtifactUnpickler(pickle.Unpickler):
    """Reads artifacts of any adcore version: classes are looked up under their current module."""

    def find_class(self, module: str, name: str) -> Any:
        for old, new in MOVED_MODULES.items():
            if module == old or module.startswith(old + "."):
                module = new + module[len(old) :]
                break
        return super().find_class(module, name)


class _opened:
    """Use a store given as an object, or open (and later close) one given as a URL."""

    def __init__(self, store: str | ModelStore | None, *, create: bool = True) -> None:
        self._given = store if store is not None and not isinstance(store, str) else None
        self._url = store if isinstance(store, str) else None
        # Reads never create a store: a mistyped URL must fail naming it, not come up empty.
        self._create = create or self._url is None
        self._store: ModelStore | None = None

    def __enter__(self) -> ModelStore:
        self._store = self._given or open_store(self._url, create=self._create)
        return self._store

    def __exit__(self, *exc: object) -> None:
        if self._given is None and self._store is not None:
            self._store.close()


def fit(
    X_or_path: Any,
    algo: str = "core:hbos",
    *,
    name: str | None = None,
    store: str | ModelStore | None = None,
    contamination: float | None = None,
    threshold: str | None = None,
    seed: int | None = None,
    columns: list[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    **params: Any,
) -> Model:
    """Fit ``algo`` on data and return a :class:`Model`; with ``name``, also save it.

    Parameters
    ----------
    X_or_path : path, array of shape (n_samples, n_features), DataFrame or Dataset
        Training data; a path is read with ``columns``/``header``/``nan_policy``, which
        are remembered so scoring reads new files the same way.
    algo, contamination, threshold, seed, **params
        As for :func:`adcore.detect`; the same data and seed give the same scores (a seed
        is drawn when none is given and stored with the model: ``model.record.seed``).
    name : str, optional
        Save the fitted model as the next version of ``name`` (``model.record.ref``).
    store : str or ModelStore, optional
        Store URL or object; default ``$ADCORE_STORE``, then the embedded store.
    """
    from adcore.services.spec import detector_spec

    spec = detector_spec(
        algo, params, contamination=contamination, threshold=threshold, seed=seed, draw_seed=True
    )
    return fit_spec(
        X_or_path, spec, name=name, store=store, columns=columns, header=header, nan_policy=nan_policy
    )


def fit_spec(
    X_or_path: Any,
    spec: Any,
    *,
    name: str | None = None,
    store: str | ModelStore | None = None,
    columns: list[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
) -> Model:
    """:func:`fit` for a ready :class:`~adcore.services.spec.DetectorSpec` (what the server calls)."""
    if name is not None:
        check_model_name(name)
    detector = spec.build()
    if isinstance(X_or_path, (str, os.PathLike)):
        dataset = read_dataset(X_or_path, columns=columns, header=header, nan_policy=nan_policy, min_rows=2)
    elif isinstance(X_or_path, Dataset):
        dataset = X_or_path
    else:
        dataset = Dataset.from_array(X_or_path, columns, nan_policy=nan_policy)
    schema = TrainingSchema.from_dataset(
        dataset, X_or_path, columns=columns, header=header, nan_policy=nan_policy
    )
    if name is None:
        return fit_model(detector, dataset, schema, store=store)
    with _opened(store) as opened:  # a bad store fails before the fit, not after it
        model = fit_model(detector, dataset, schema, name=name, store=store)
        model.save(name, store=opened)
    return model


def fit_model(
    detector: Detector,
    dataset: Dataset,
    schema: TrainingSchema,
    *,
    name: str | None = None,
    store: str | ModelStore | None = None,
) -> Model:
    """Fit an already validated detector exactly as ``run`` does (same scores), then wrap it."""
    from adcore.services.detect import fit_detect

    started = time.perf_counter()
    fit_detect(detector, dataset)
    return Model(detector, schema, name=name, store=store, fit_seconds=time.perf_counter() - started)


def load_model(ref: str, store: str | ModelStore | None = None) -> Model:
    """Load ``"name@version"`` (or ``"name"``: its latest version) after checking its SHA-256.

    Raises ``ModelNotFoundError`` for an unknown name or version and ``IntegrityError``
    when the artifact was modified or truncated after saving: it is then never unpickled.
    """
    with tracing.span("adcore.store.load", model=ref):
        name, version = parse_model_ref(ref)
        with _opened(store, create=False) as opened:
            record = opened.get(name, version)
            if str(record.algorithm).startswith("ts:"):  # adcore.timeseries.models stores those
                from adcore.errors import ParameterError

                raise ParameterError(
                    f"model {record.ref} is a time-series model ({record.algorithm}): score it with "
                    f"'adcore score --model {record.name}' or 'adcore stream --model {record.name}'"
                )
            data = verify_artifact(record, opened.read_artifact(record))
        model = Model.from_bytes(data, record=record)
        tracing.set_attributes(model=record.ref, algorithm=record.algorithm, bytes=len(data))
    model.store = store
    return model
