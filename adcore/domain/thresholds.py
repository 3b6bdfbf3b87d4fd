"""Turning scores into labels: the threshold methods behind ``--threshold``.

A threshold is learned from the training scores, like PyOD's ``threshold_``, so new data
is labelled against what was normal at fit time. ``contamination`` is PyOD's rule
(the ``1 - contamination`` quantile, labels are ``score > threshold``); the automatic
methods need no guess of the anomaly share:

- ``mad[:k]``: median + k * 1.4826 * MAD (default k = 3), robust to the anomalies themselves;
- ``iqr[:k]``: Q3 + k * IQR (Tukey's fence, default k = 1.5);
- ``zscore[:k]``: mean + k * std (default k = 3);
- ``fixed:VALUE``: a score threshold chosen by the user;
- ``fdr:Q``: Benjamini-Hochberg on conformal p-values (:mod:`adcore.domain.conformal`): a row
  is anomalous when BH rejects "normal" at false-discovery rate ``Q`` in (0, 1) (default
  0.05) among the rows scored together. The cut depends on the batch, so ``compute_threshold``
  has no single value for it; the detector labels through :func:`adcore.domain.conformal`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from adcore.errors import ParameterError

THRESHOLD_METHODS = ("contamination", "mad", "iqr", "zscore", "fixed", "fdr")
DEFAULT_FDR = 0.05
_DEFAULT_K = {"mad": 3.0, "iqr": 1.5, "zscore": 3.0}
# What a person means by a number: ASCII digits, sign, point, exponent. float() alone would also
# take "1_0" or full-width and Arabic-Indic digits, and an empty value must not quietly mean the default.
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class ThresholdSpec:
    method: str
    value: float | None = None

    def __str__(self) -> str:
        return self.method if self.value is None else f"{self.method}:{self.value:g}"


def percentile_of_sorted(sorted_scores: np.ndarray, percent: float) -> float:
    """``np.percentile(scores, percent)`` (its default linear method) of ascending ``sorted_scores``.

    The same float operations as numpy's ``_quantile`` and ``_lerp`` (virtual index
    ``(n - 1) * q``, interpolation from the upper neighbour when its weight is at least a half),
    so the result is bit-identical (tests/test_thresholds.py checks it against numpy).
    """
    n = sorted_scores.shape[0]
    virtual = (n - 1) * np.true_divide(np.float64(percent), 100)
    if virtual >= n - 1:
        return float(sorted_scores[-1])
    if virtual < 0:
        return float(sorted_scores[0])
    below = int(np.floor(virtual))
    a, b = sorted_scores[below], sorted_scores[below + 1]
    t = virtual - below
    diff = b - a
    return float(b - diff * (1 - t)) if t >= 0.5 else float(a + diff * t)


def parse_threshold(spec: str) -> ThresholdSpec:
    """Parse ``"mad"``, ``"mad:2.5"``, ``"fixed:1.7"``; a bad spec names the choices."""
    method, sep, arg = str(spec).strip().lower().partition(":")
    if method not in THRESHOLD_METHODS:
        raise ParameterError(
            f"unknown threshold method {spec!r}; choose one of: contamination, mad[:k], iqr[:k], "
            "zscore[:k], fixed:VALUE, fdr[:Q]"
        )
    if method == "contamination":
        if sep:
            raise ParameterError("threshold 'contamination' takes no value; set --contamination instead")
        return ThresholdSpec(method)
    if method == "fdr":
        return _parse_fdr(spec, arg if sep else None)
    if not sep:
        if method == "fixed":
            raise ParameterError("threshold 'fixed' needs a value, e.g. fixed:0.8")
        return ThresholdSpec(method, _DEFAULT_K[method])
    if not _NUMBER_RE.fullmatch(arg):  # "mad:" (a value forgotten), "mad:1_0", non-ASCII digits: not numbers
        example = "fixed:0.8" if method == "fixed" else f"{method}:{_DEFAULT_K[method]:g}"
        what = "has no value after ':'" if not arg else f"{arg!r} is not a number"
        raise ParameterError(f"threshold {spec!r} {what}; give one, e.g. {example}")
    value = float(arg)
    if not np.isfinite(value) or (method != "fixed" and value <= 0):
        raise ParameterError(f"threshold {spec!r}: the multiplier must be a positive number")
    return ThresholdSpec(method, value)


def _parse_fdr(spec: str, arg: str | None) -> ThresholdSpec:
    """``fdr`` (level 0.05) or ``fdr:Q``, Q a false-discovery rate strictly between 0 and 1."""
    if arg is None:
        return ThresholdSpec("fdr", DEFAULT_FDR)
    if not _NUMBER_RE.fullmatch(arg) or not 0.0 < float(arg) < 1.0:
        what = "has no level after ':'" if not arg else f"level {arg!r} is not a number in (0, 1)"
        raise ParameterError(f"threshold {spec!r}: {what}; give a false-discovery rate, e.g. fdr:0.05")
    return ThresholdSpec("fdr", float(arg))


def is_fdr(spec: str | ThresholdSpec | None) -> bool:
    """Whether a threshold spec labels by Benjamini-Hochberg (and so needs calibration)."""
    if spec is None:
        return False
    if isinstance(spec, ThresholdSpec):
        return spec.method == "fdr"
    return str(spec).strip().lower().partition(":")[0] == "fdr"


def check_contamination(contamination: float) -> float:
    """PyOD's range: the share of anomalies is in (0, 0.5]."""
    try:
        value = float(contamination)
    except (TypeError, ValueError):
        raise ParameterError(f"contamination must be a number in (0, 0.5], got {contamination!r}") from None
    if not 0.0 < value <= 0.5:
        raise ParameterError(f"contamination must be in (0, 0.5], got {contamination!r}")
    return value


def compute_threshold(
    scores: np.ndarray,
    method: str | ThresholdSpec,
    contamination: float,
    *,
    sorted_scores: np.ndarray | None = None,
) -> float:
    """The score above which a sample is labelled anomalous.

    ``sorted_scores`` (the same scores, sorted ascending), when the caller has them anyway,
    makes the contamination rule an index lookup instead of ``np.percentile``'s partition and
    Python-level set-up (~70 us of a stream's ~1 ms refit), with the same value to the bit.
    """
    spec = method if isinstance(method, ThresholdSpec) else parse_threshold(method)
    if spec.method == "contamination":
        percent = 100.0 * (1.0 - check_contamination(contamination))
        if sorted_scores is not None and sorted_scores.dtype == np.float64 and sorted_scores.size:
            return percentile_of_sorted(sorted_scores, percent)
        return float(np.percentile(np.asarray(scores, dtype=np.float64), percent))
    scores = np.asarray(scores, dtype=np.float64)
    if spec.method == "fixed":
        return float(spec.value)  # type: ignore[arg-type]
    if spec.method == "fdr":
        raise ParameterError("threshold 'fdr' labels with p-values: it has no fixed score threshold")
    k = float(spec.value)  # type: ignore[arg-type]
    if spec.method == "mad":
        median = float(np.median(scores))
        mad = 1.4826 * float(np.median(np.abs(scores - median)))
        return median + k * mad
    if spec.method == "iqr":
        q1, q3 = np.percentile(scores, [25.0, 75.0])
        return float(q3 + k * (q3 - q1))
    return float(scores.mean() + k * scores.std())
