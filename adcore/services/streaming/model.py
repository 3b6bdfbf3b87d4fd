"""The model a stream scores with: where it came from, how it is refitted, what it is called.

A stream either fits its own model after warm-up (``--algo``) or starts from a registry
model (``--model payments@3``). Either way refits use the same algorithm and parameters
on the recent window. A registry model is never overwritten: refits are labelled
``payments@3+r1``, ``+r2``... in the output and events, and are written to the store only
with ``--save-retrained NAME`` (each refit then becomes the next version of ``NAME``, and
its label is that ``NAME@version``).

An *online* detector (one with ``score_partial``; :attr:`StreamModel.online`) is not
refitted to follow the stream: it learns each record right after scoring it
(:meth:`StreamModel.score_learning`), from the first record it can. A stored online model
keeps learning the same way, in memory only (the stored version is never changed, and the
records keep its label). Refits, when asked for, start it afresh on recent records.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import numpy as np

from adcore.domain.detector import Detector
from adcore.errors import AdcoreError, ParameterError


class StreamModel:
    """The detector in effect plus its provenance; see the module docstring."""

    def __init__(
        self,
        template: Detector,
        *,
        fitted: bool = False,
        base_ref: str | None = None,
        feature_names: list[str] | None = None,
        n_features: int | None = None,
        save_as: str | None = None,
        store: Any = None,
    ) -> None:
        self.detector: Detector | None = template if fitted else None
        self._template_params = template.get_params()
        self.online = hasattr(template, "score_partial")  # the wrapper passes it through when it has it
        self.base_ref = base_ref
        self.feature_names = feature_names
        self.n_features = n_features
        self.save_as = save_as
        self.store = store
        self.refits = 0
        self.label: str | None = base_ref
        self.last_saved: Any = None  # the ModelRecord of the latest fit written to the store
        self.calibrate = False  # refits keep conformal calibration scores (p-values, fdr:Q)

    # -- construction
    @classmethod
    def from_algorithm(
        cls, detector: Detector, *, save_as: str | None = None, store: Any = None
    ) -> StreamModel:
        """An unfitted detector (validated parameters) that the stream fits after warm-up."""
        return cls(detector, save_as=save_as, store=store)

    @classmethod
    def from_registry(cls, ref: str, *, store: Any = None, save_as: str | None = None) -> StreamModel:
        """A stored model (``name`` or ``name@version``), loaded and checksum-verified."""
        from adcore.services.models import load_model

        model = load_model(ref, store=store)
        return cls(
            model.detector,
            fitted=True,
            base_ref=model.ref,
            feature_names=model.schema.feature_names,
            n_features=model.schema.n_features,
            save_as=save_as,
            store=store,
        )

    # -- state
    @property
    def fitted(self) -> bool:
        return self.detector is not None

    @property
    def template_params(self) -> dict[str, Any]:
        """The detector's constructor arguments (threshold rule and contamination included)."""
        return dict(self._template_params)

    @property
    def algorithm(self) -> str:
        algorithm = self._template_params["algorithm"]
        if isinstance(algorithm, str):
            return algorithm
        return str(getattr(algorithm, "__qualname__", repr(algorithm)))

    @property
    def seed(self) -> int | None:
        """The detector's seed: the one drawn or given for ``--algo``, the stored one for ``--model``."""
        seed = self._template_params.get("random_state")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    @property
    def threshold(self) -> float | None:
        return None if self.detector is None else float(self.detector.threshold_)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Scores of a batch (higher = more anomalous)."""
        assert self.detector is not None, "fit first"
        return self.detector.decision_function(X)

    # -- online detectors
    @property
    def min_records(self) -> int:
        """Records an online detector needs before its scores mean anything (1 for others)."""
        detector = self.detector or Detector(**self._template_params)
        return int(detector.min_records) if self.online else 1

    def learn(self, X: np.ndarray) -> None:
        """An online detector learns ``X`` without scoring it (a warm-up); started here if new."""
        if self.detector is None:
            self.detector = Detector(**self._template_params)
        self.detector.partial_fit(X)

    def score_learning(self, X: np.ndarray) -> np.ndarray:
        """Test-then-train scores of ``X`` (row i by the model that learned rows before it)."""
        if self.detector is None:
            detector = Detector(**self._template_params)
            scores = detector.score_partial(X)
            self.detector = detector  # only once it worked: a refused first batch leaves none
            return scores
        return self.detector.score_partial(X)

    def window_warmup(self, window: int) -> int:
        """The default warm-up of this detector fitted on a window (see ``streaming.warmup``)."""
        from adcore.services.streaming.warmup import window_warmup

        return window_warmup(Detector(**self._template_params), window)

    def refit(self, X: np.ndarray, feature_names: list[str] | None) -> tuple[float, bool]:
        """Fit a fresh detector (same algorithm and parameters) on ``X``; returns (ms, saved).

        The new detector replaces the old one only once fitted (and saved, with
        ``save_as``), so a failing fit or save leaves the stream scoring with the previous model.
        """
        from adcore.services import tracing

        started = time.perf_counter()
        algorithm = self._template_params.get("algorithm")
        with tracing.span(
            "adcore.fit", algorithm=algorithm if isinstance(algorithm, str) else None, rows=len(X),
            features=X.shape[1] if X.ndim == 2 else None, refit=True,
        ):  # fmt: skip
            # Unsaved refits are only scored with, never explained: no explanation baseline.
            detector = Detector(**self._template_params).fit(
                X, keep_baseline=self.save_as is not None, calibrate=self.calibrate or None
            )
        fit_ms = (time.perf_counter() - started) * 1000.0
        label, saved = self.label, False
        if self.save_as is not None:
            self.last_saved = self._save(detector, X, feature_names, fit_ms / 1000.0)
            label, saved = self.last_saved.ref, True
        elif self.base_ref is not None:
            label = f"{self.base_ref}+r{self.refits + 1}"
        self.detector, self.label = detector, label
        self.refits += 1
        return fit_ms, saved

    # -- the first fit, checked before warm-up output
    def check_first_fit(self, n_samples: int, n_features: int) -> None:
        """Raise now if the first fit, on ``n_samples`` warm-up rows, cannot work with these parameters.

        A stream emits its warm-up records before its first fit, so a detector whose
        parameters need more rows than the warm-up holds (``pyod:knn`` with
        ``n_neighbors=5000`` on a window of 100) would fail only after every warm-up record
        was written as if all were well. One fit on ``n_samples`` rows of Gaussian noise
        (benign data: no duplicates, full rank) tells in advance. Only a failure that names a
        parameter of the detector is raised (see :meth:`first_fit_error`): any other may be
        the noise's fault rather than the settings', and is left to the real fit to show.
        """
        if self.fitted:
            return
        X = np.random.default_rng(0).standard_normal((n_samples, n_features))
        try:
            Detector(**self._template_params).fit(X, keep_baseline=False)
        except AdcoreError as exc:
            error = self.first_fit_error(exc, n_samples)
            if error is not None:
                raise error from exc

    def first_fit_error(self, exc: AdcoreError, n_samples: int) -> ParameterError | None:
        """The first fit's failure as one line naming the detector and its parameter, if it names one.

        ``None`` when the error names none of the detector's parameters (then the error is
        about the data, and is raised as it is).
        """
        parameter = exc.parameter or self._parameter_named_in(str(exc))
        if parameter is None:
            return None
        given = self._template_params.get(parameter)
        setting = f"{parameter}={given!r}" if given is not None else f"its {parameter}"
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        lines = str(cause).strip().splitlines()
        reason = lines[0] if lines else type(cause).__name__
        error = ParameterError(
            f"{self.algorithm} cannot be fitted on a warm-up of {n_samples} records with {setting}: "
            f"{reason} (raise --warmup and --window, or change {parameter})"
        )
        error.algorithm, error.parameter = self.algorithm, parameter
        return error

    def _parameter_named_in(self, message: str) -> str | None:
        """The detector parameter a library's message mentions (one the user gave first)."""
        names = [k for k in self._template_params if k not in ("algorithm", "threshold")]
        with contextlib.suppress(Exception):  # a factory whose parameters cannot be listed
            names += list(Detector(**self._template_params).params_model().model_fields)  # type: ignore[attr-defined]
        for name in names:
            if re.search(rf"\b{re.escape(name)}\b", message):
                return name
        return None

    def _save(self, detector: Detector, X: np.ndarray, names: list[str] | None, fit_seconds: float) -> Any:
        """Write ``detector`` as the next version of ``save_as``; returns its ``ModelRecord``."""
        from adcore.domain.schema import TrainingSchema, generated_names
        from adcore.services.models import Model

        real_names = names if names and not generated_names(names) else None
        schema = TrainingSchema(
            n_samples=int(X.shape[0]),
            n_features=int(X.shape[1]),
            feature_names=real_names,
            dtypes=["float64"] * int(X.shape[1]),
            read_options={"columns": real_names, "header": None, "nan": "error"},
        )
        model = Model(detector, schema, name=self.save_as, store=self.store, fit_seconds=fit_seconds)
        return model.save()
