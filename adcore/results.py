"""What a detection returns: :class:`DetectionResult` and its :class:`Anomaly` records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Anomaly:
    """One row labelled anomalous: where it is, how anomalous, how sure, and (later) why."""

    index: int
    score: float
    confidence: float
    explanation: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "score": self.score, "confidence": self.confidence}
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


@dataclass
class DetectionResult:
    """Scores and labels for every input row, plus what produced them.

    ``scores``/``labels`` have one entry per row in input order (higher score = more
    anomalous; label 1 = anomaly). ``metadata`` holds timings (seconds), versions and
    the data's shape, so a result can be reproduced and audited.
    """

    algorithm: str
    params: dict[str, Any]
    scores: np.ndarray
    labels: np.ndarray
    threshold: float
    confidence: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    explanations: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_anomalies(self) -> int:
        return int(np.count_nonzero(self.labels == 1))

    @property
    def anomalies(self) -> list[Anomaly]:
        """The anomalous rows, most anomalous first."""
        idx = np.flatnonzero(self.labels == 1)
        idx = idx[np.argsort(-self.scores[idx], kind="stable")]
        conf = self.confidence if self.confidence is not None else np.ones_like(self.scores)
        return [
            Anomaly(int(i), float(self.scores[i]), float(conf[i]), self.explanations.get(int(i))) for i in idx
        ]

    def summary(self) -> dict[str, Any]:
        """Small JSON-able overview (what ``adcore run --json`` prints)."""
        finite = self.scores[np.isfinite(self.scores)]
        return {
            "id": self.id,
            "algorithm": self.algorithm,
            "params": _jsonable(self.params),
            "n_samples": self.n_samples,
            "n_anomalies": self.n_anomalies,
            "threshold": self.threshold,
            "score_min": float(finite.min()) if finite.size else None,
            "score_max": float(finite.max()) if finite.size else None,
            "seed": self.seed,
            "metadata": _jsonable(self.metadata),
        }

    @property
    def seed(self) -> int | None:
        """The seed the fit used (``random_state``): pass it as ``seed=`` to repeat the result."""
        recorded = (self.metadata.get("seed"), self.metadata.get("random_state"))
        for value in (*recorded, self.params.get("random_state")):
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                return int(value)
        return None

    def to_dict(self, *, include_rows: bool = True) -> dict[str, Any]:
        out = self.summary()
        out["feature_names"] = list(self.feature_names)
        out["anomalies"] = [a.to_dict() for a in self.anomalies]
        if include_rows:
            out["scores"] = [None if not np.isfinite(s) else float(s) for s in self.scores]
            out["labels"] = [int(v) for v in self.labels]
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame with ``score``, ``label`` and ``confidence`` columns."""
        import pandas as pd

        data: dict[str, Any] = {"score": self.scores, "label": self.labels}
        if self.confidence is not None:
            data["confidence"] = self.confidence
        return pd.DataFrame(data)


def _jsonable(value: Any) -> Any:
    """Make numpy scalars, arrays and odd objects JSON-serialisable."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
