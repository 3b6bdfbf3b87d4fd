"""What every drift detector shares: the signal it emits, the protocol, argument checks.

Kept apart from the detectors so that the streaming service can import the signal type and
the protocol without pulling in any algorithm, and so that all detectors reject bad input
with the same error types and wording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from adcore.errors import DataError, ParameterError, SchemaMismatchError


@dataclass(frozen=True)
class DriftSignal:
    """One detected drift, as emitted in a ``drift.detected`` event.

    ``index`` is the 0-based position, in everything passed to ``update`` since the
    detector was built (``reset`` does not restart it), of the value at which the drift
    was detected, so that the service can line a signal up with its own record offsets.
    ``statistic`` crossed ``threshold`` (for KS: the KS distance against the critical
    distance at the corrected level; ``p_value`` is then Bonferroni-adjusted).
    """

    detector: str
    statistic: float
    threshold: float
    index: int
    p_value: float | None = None
    feature: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only, so ``json.dumps`` works without a custom encoder."""
        return {
            "detector": str(self.detector),
            "statistic": _json_float(self.statistic),
            "threshold": _json_float(self.threshold),
            "index": int(self.index),
            "p_value": None if self.p_value is None else _json_float(self.p_value),
            "feature": None if self.feature is None else str(self.feature),
        }


def _json_float(value: float) -> float | None:
    """JSON has no inf/NaN; map them to null rather than emit invalid JSON."""
    value = float(value)
    return value if math.isfinite(value) else None


@runtime_checkable
class DriftDetector(Protocol):
    """What the streaming service calls: ``update`` after each micro-batch, ``reset`` after retraining."""

    name: str

    def reset(self, reference: np.ndarray | None = None) -> None:
        """Start over against a new reference (1-D scores or 2-D features); the index keeps counting."""
        ...

    def update(self, values: np.ndarray) -> list[DriftSignal]:
        """Feed one batch (1-D scores or 2-D ``(n, n_features)``); return the drifts found in it."""
        ...


def params_repr(obj: Any, fields: tuple[str, ...]) -> str:
    """``KSDrift(window=500, ...)``: what a log line about a detector should show."""
    return f"{type(obj).__name__}({', '.join(f'{f}={getattr(obj, f)!r}' for f in fields)})"


# --- argument checks -------------------------------------------------------------------------


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """An integer parameter (bools refused: ``window=True`` is always a mistake)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real parameter inside ``[low, high]`` (either end optionally open)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad = bad or (value <= low if low_open else value < low)
    if high is not None:
        bad = bad or (value >= high if high_open else value > high)
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ParameterError(f"{name} must be a finite number in {rng}, got {value!r}")
    return value


def check_feature_names(feature_names: Any) -> list[str] | None:
    """Names are used verbatim in events, so they must be distinct non-empty strings."""
    if feature_names is None:
        return None
    if isinstance(feature_names, str) or not all(isinstance(n, str) and n for n in feature_names):
        raise ParameterError("feature_names must be a list of non-empty strings")
    names = list(feature_names)
    if len(set(names)) != len(names):
        raise ParameterError("feature_names must be distinct")
    if not names:
        raise ParameterError("feature_names must not be empty")
    return names


def as_batch(values: Any, what: str = "values") -> np.ndarray:
    """A float64 1-D or 2-D array with finite entries.

    NaN or inf would silently poison running sums (ADWIN, Page-Hinkley) or sort to one
    end (KS), so they are refused with the row that holds them instead.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numeric: {exc}") from None
    if arr.ndim not in (1, 2):
        raise DataError(f"{what} must be 1-D (scores) or 2-D (n, n_features), got shape {arr.shape}")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise DataError(f"{what} has no features (shape {arr.shape})")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        column = int(bad[1]) if arr.ndim == 2 else None
        raise DataError(f"{what} must be finite (found {arr[tuple(bad)]!r})", row=int(bad[0]), column=column)
    return arr


def as_scores(values: Any, detector: str, what: str = "values") -> np.ndarray:
    """1-D scores for the sequential detectors; ``(n, 1)`` is accepted as 1-D."""
    arr = as_batch(values, what)
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            raise ParameterError(
                f"{detector} works on a 1-D stream of anomaly scores, got {what} of shape {arr.shape}; "
                "use 'ks' or 'psi' for per-feature drift"
            )
        arr = arr[:, 0]
    return arr


def check_width(arr: np.ndarray, n_features: int | None, is_1d: bool | None, what: str) -> None:
    """Refuse a batch whose layout differs from the reference (a schema change, not drift)."""
    if is_1d is None:
        return
    if is_1d and arr.ndim != 1:
        raise SchemaMismatchError(f"{what} must be 1-D like the reference, got shape {arr.shape}")
    if not is_1d and (arr.ndim != 2 or arr.shape[1] != n_features):
        raise SchemaMismatchError(
            f"{what} must have shape (n, {n_features}) like the reference, got shape {arr.shape}"
        )
