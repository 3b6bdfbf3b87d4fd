"""Request and response bodies of the REST API (pydantic models, hence the OpenAPI schema).

Every request model forbids unknown keys (a misspelt ``contamination`` must not be
ignored) and every float must be finite: Python's json accepts ``NaN`` and
``Infinity``, and ``1e999`` parses as infinity, so both are refused here with a 422.
Responses never hold NaN or infinity either: a non-finite score is ``null``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


MAX_PARAMS_DEPTH = 32


def _reject_non_finite(value: Any, where: str = "params") -> Any:
    """Walk free-form JSON (``params``) and refuse NaN/infinity anywhere in it, and deep nesting.

    Iterative, with a depth limit: the JSON parser accepts nesting up to 1,024 levels, and a
    recursive walk of that raised RecursionError (a 500). No detector parameter is nested
    more than a few levels, so anything past :data:`MAX_PARAMS_DEPTH` is refused with a 422.
    """
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{path}: NaN and infinity are not allowed")
        if isinstance(item, (dict, list)) and depth >= MAX_PARAMS_DEPTH:
            raise ValueError(f"{where}: nested deeper than {MAX_PARAMS_DEPTH} levels")
        if isinstance(item, dict):
            pending.extend((v, f"{path}.{k}", depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
    return value


def numeric_rows(rows: list[Any]) -> Any:
    """``rows`` as a 2-D numeric array when they convert cleanly, else ``rows`` unchanged.

    :func:`parse_matrix` then only checks the array's shape and finiteness; anything else
    (ragged rows, strings, huge integers) keeps its list, and the validator's message.
    """
    try:
        arr = np.asarray(rows)
    except (ValueError, TypeError, OverflowError):
        return rows
    return arr if arr.ndim == 2 and arr.dtype.kind in "iuf" else rows


def parse_matrix(value: Any) -> np.ndarray:
    """JSON rows -> a finite float64 matrix, in one numpy pass rather than one check per number.

    A 50,000-row body holds hundreds of thousands of numbers: validating each as a
    pydantic float costs more than fitting a detector on them. numpy converts the rows
    at once; only a failure walks them, to say which row or cell is wrong.
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of rows, each a list of numbers")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            arr = np.asarray([], dtype=object)
        if arr.ndim != 2 or arr.dtype.kind not in "iuf":
            raise ValueError(_first_bad_row(value))
    if arr.shape[1] == 0:
        raise ValueError("rows need at least one feature")
    matrix = arr.astype(np.float64, copy=False)
    finite = np.isfinite(matrix)
    if not finite.all():
        i, j = (int(k) for k in np.argwhere(~finite)[0])
        raise ValueError(f"row {i}, feature {j}: NaN and infinity are not allowed")
    return matrix


def _first_bad_row(rows: list[Any]) -> str:
    width = len(rows[0]) if isinstance(rows[0], list) else None
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            return f"row {i} is not a list of numbers"
        if len(row) != width:
            return f"row {i} has {len(row)} values, row 0 has {width}; rows must be equally long"
        for j, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, (int, float)):
                return f"row {i}, feature {j}: {type(cell).__name__} is not a number"
    return "must be a list of rows, each a list of numbers"


Matrix = Annotated[
    Any,
    PlainValidator(parse_matrix),
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 1,
            "items": {"type": "array", "minItems": 1, "items": {"type": "number"}},
            "description": "Rows x features, finite numbers only (equally long rows).",
            "examples": [[[1.0, 2.0], [3.0, 4.0]]],
        }
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataRequest(_Request):
    """Rows to score: ``data`` is a list of rows, each a list of finite numbers."""

    data: Matrix
    feature_names: list[str] | None = Field(
        None, description="One name per feature; checked against the model's training features."
    )


class DetectorOptions(_Request):
    algorithm: str = Field(
        "core:hbos", description="A name from GET /v1/algorithms, e.g. core:hbos or iforest."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The algorithm's own parameters; for an ensemble (algorithm 'a,b'), its options "
        "(combine, normalize...) and MEMBER.KEY for one member's.",
    )
    contamination: FiniteFloat | None = Field(
        None, gt=0, le=0.5, description="Expected share of anomalies (default 0.1)."
    )
    threshold: str | None = Field(
        None,
        description="contamination (default) | mad[:k] | iqr[:k] | zscore[:k] | fixed:V | fdr:Q "
        "(Benjamini-Hochberg at false-discovery rate Q on conformal p-values); "
        "a vote ensemble defaults to a majority (fixed:0.5)",
    )
    seed: int | None = Field(
        None,
        ge=0,
        lt=2**32,
        description="Random seed, passed as random_state (drawn and reported when omitted).",
    )

    @field_validator("params")
    @classmethod
    def _finite_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _reject_non_finite(value)


class DetectRequest(DetectorOptions, DataRequest):
    """Fit ``algorithm`` on ``data`` and score every row of it (nothing is stored)."""

    p_values: bool = Field(
        False,
        description="Also return each row's conformal p-value (small = anomalous); the fit is then "
        "calibrated on out-of-fold scores, which costs 5 extra fits. Off by default.",
    )


class FitRequest(DetectorOptions, DataRequest):
    """Fit ``algorithm`` on ``data`` and save it as the next version of ``name``."""

    name: str = Field(
        ..., pattern=MODEL_NAME_PATTERN, description="Model name; versions are numbered from 1."
    )


class ScoreRequest(DataRequest):
    """Score ``data`` with a stored model (no refit)."""


class ExplainRequest(DataRequest):
    """Explain rows with a stored model: one ``{feature: contribution}`` per row."""

    top: int | None = Field(None, ge=1, description="Keep only the top contributions per row.")


class AnomalyOut(BaseModel):
    index: int
    score: float | None
    confidence: float


class DetectionResponse(BaseModel):
    """Scores (higher = more anomalous; ``null`` if not finite) and 0/1 labels for every row, in order."""

    id: str
    algorithm: str
    model: str | None = Field(None, description="name@version of the stored model that scored the rows.")
    n_samples: int
    n_anomalies: int
    threshold: float | None
    score_min: float | None = None
    score_max: float | None = None
    scores: list[float | None]
    labels: list[int]
    anomalies: list[AnomalyOut] = Field(description="The anomalous rows, most anomalous first.")
    feature_names: list[str]
    params: dict[str, Any]
    seed: int | None = Field(None, description="The seed the detector was fitted with: repeat with it.")
    metadata: dict[str, Any]
    p_values: list[float] | None = Field(
        None, description="Conformal p-values of the rows, in order (only when the request asked for them)."
    )


class ModelOut(BaseModel):
    """One stored model version (the model store's index entry, without the artifact key)."""

    ref: str
    name: str
    version: int
    algorithm: str
    params: dict[str, Any]
    threshold: float | None
    threshold_method: str
    contamination: float
    seed: int | None
    n_samples: int
    n_features: int
    feature_names: list[str] | None
    score_quantiles: dict[str, float | None]
    metrics: dict[str, Any]
    sha256: str
    size: int
    created_at: str


class ModelList(BaseModel):
    models: list[ModelOut]


class RemovedModels(BaseModel):
    removed: list[ModelOut]


class ExplainResponse(BaseModel):
    model: str
    explanations: list[dict[str, float | None]] = Field(description="One {feature: contribution} per row.")


class AlgorithmOut(BaseModel):
    name: str
    plugin: str
    short_name: str
    summary: str
    default_for_bare_name: bool
    needs: list[str]
    tags: list[str]
    parameters: list[dict[str, Any]] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema", serialization_alias="schema")
    error: str | None = Field(
        None, description="Why the parameters could not be described (missing package)."
    )

    model_config = ConfigDict(populate_by_name=True)


class AlgorithmList(BaseModel):
    algorithms: list[AlgorithmOut]


class AlgorithmDetail(BaseModel):
    name: str
    plugin: str
    summary: str
    needs: list[str]
    tags: list[str]
    parameters: list[dict[str, Any]]
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    common_parameters: dict[str, str]

    model_config = ConfigDict(populate_by_name=True)


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class RecentDetection(BaseModel):
    """A detection or scoring call as the dashboard shows it: counts and a score histogram."""

    id: str
    time: str
    kind: str = Field(description="detect (fit and score) or score (a stored model).")
    model: str | None
    algorithm: str
    n_samples: int
    n_anomalies: int
    threshold: float | None
    score_min: float | None
    score_max: float | None
    histogram: Histogram
    duration_ms: float


class RecentDetections(BaseModel):
    detections: list[RecentDetection]


class DriftEventOut(BaseModel):
    id: str
    type: str
    timestamp: str
    stream: str | None
    model: str | None
    algorithm: str | None
    detector: str
    on: str
    offset: int
    statistic: float | None
    threshold: float | None
    p_value: float | None
    feature: str | None
    action: str


class DriftEvents(BaseModel):
    events: list[DriftEventOut]


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class ErrorBody(BaseModel):
    type: str = Field(description="Machine-readable kind: validation_error, unauthorized, model_not_found...")
    message: str = Field(description="What went wrong and how to fix it.")

    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    error: ErrorBody
