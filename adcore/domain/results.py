"""What a detection returns: :class:`DetectionResult` and its :class:`Anomaly` records."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcore.io.jsonio import jsonable


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


#: Where an instance keeps its confidence array, given or computed (see _ComputedOnRead).
_CONFIDENCE_KEY = "_confidence_stored"


class _ComputedOnRead:
    """``DetectionResult.confidence``: left as None, computed on its first read and kept.

    ``DetectionResult.confidence`` needs a search of every row's score among the training
    scores (0.5 s on 2,000,000 rows), while a run's summary shows ten rows' and its output
    file none: so a result may carry ``confidence_of`` (scores -> confidences) instead,
    and the full array is made only if someone reads it.
    """

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return None  # the dataclass default
        value = obj.__dict__.get(_CONFIDENCE_KEY)
        if value is None and obj.confidence_of is not None:
            value = obj.__dict__[_CONFIDENCE_KEY] = obj.confidence_of(obj.scores)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[_CONFIDENCE_KEY] = value


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
    confidence: np.ndarray | None = _ComputedOnRead()  # type: ignore[assignment]
    feature_names: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    explanations: dict[int, dict[str, float]] = field(default_factory=dict)
    #: Conformal p-values of the rows (small = anomalous), when the fit was calibrated.
    p_values: np.ndarray | None = None
    #: Scores -> confidences, when ``confidence`` was not given: computed for the rows read.
    confidence_of: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """A pickle carries the confidence values, not ``confidence_of`` (it would drag the
        fitted detector along)."""
        state = dict(self.__dict__)
        state[_CONFIDENCE_KEY] = self.confidence
        state["confidence_of"] = None
        return state

    def confidence_at(self, rows: np.ndarray) -> np.ndarray:
        """The confidence of ``rows`` only (all ones when the result has none)."""
        stored = self.__dict__.get(_CONFIDENCE_KEY)
        if stored is not None:
            return np.asarray(stored, dtype=np.float64)[rows]
        if self.confidence_of is not None:
            return np.asarray(self.confidence_of(self.scores[rows]), dtype=np.float64)
        return np.ones(len(rows), dtype=np.float64)

    @property
    def n_samples(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_anomalies(self) -> int:
        return int(np.count_nonzero(self.labels == 1))

    @property
    def anomalies(self) -> list[Anomaly]:
        """The anomalous rows, most anomalous first."""
        return self.top_anomalies(None)

    def top_anomalies(self, k: int | None) -> list[Anomaly]:
        """The ``k`` most anomalous rows (all with None), in :attr:`anomalies`' order.

        Builds only ``k`` objects: a summary of a 2,000,000-row run wants 10 of its 200,000
        anomalies, and building them all cost 0.3 s.
        """
        idx = np.flatnonzero(self.labels == 1)
        idx = idx[np.argsort(-self.scores[idx], kind="stable")[:k]]
        conf = self.confidence_at(idx)
        return [
            Anomaly(int(i), float(self.scores[i]), float(c), self.explanations.get(int(i)))
            for i, c in zip(idx, conf, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        """Small JSON-able overview (what ``adcore run --json`` prints)."""
        finite = self.scores[np.isfinite(self.scores)]
        return jsonable(
            {
                "id": self.id,
                "algorithm": self.algorithm,
                "params": self.params,
                "n_samples": self.n_samples,
                "n_anomalies": self.n_anomalies,
                "threshold": self.threshold,
                "score_min": float(finite.min()) if finite.size else None,
                "score_max": float(finite.max()) if finite.size else None,
                "seed": self.seed,
                "metadata": self.metadata,
            }
        )

    @property
    def seed(self) -> int | None:
        """The seed the fit used (``random_state``): pass it as ``seed=`` to repeat the result."""
        recorded = (self.metadata.get("seed"), self.metadata.get("random_state"))
        for value in (*recorded, self.params.get("random_state")):
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                return int(value)
        return None

    def to_dict(self, *, include_rows: bool = True) -> dict[str, Any]:
        """Everything as JSON types (non-finite scores are ``null``): what the REST API returns.

        Built with numpy's ``tolist`` rather than one Python float per score: on a
        50,000-row request the body would otherwise cost more than the detection.
        """
        scores = np.asarray(self.scores, dtype=np.float64)
        labels = np.asarray(self.labels, dtype=np.int64)
        finite = np.isfinite(scores)
        order = np.flatnonzero(labels == 1)
        order = order[np.argsort(-scores[order], kind="stable")]
        top_scores = _finite_list(scores[order], finite[order])
        anomalies = [
            {"index": i, "score": s, "confidence": c}
            for i, s, c in zip(order.tolist(), top_scores, self.confidence_at(order).tolist(), strict=True)
        ]
        for anomaly in anomalies if self.explanations else ():
            explanation = self.explanations.get(anomaly["index"])
            if explanation is not None:
                anomaly["explanation"] = jsonable(explanation)
        out = self.summary()
        out["feature_names"] = list(self.feature_names)
        out["anomalies"] = anomalies
        if include_rows:
            out["scores"] = _finite_list(scores, finite)
            out["labels"] = labels.tolist()
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame with ``score``, ``label`` and ``confidence`` columns."""
        import pandas as pd

        data: dict[str, Any] = {"score": self.scores, "label": self.labels}
        if self.confidence is not None:
            data["confidence"] = self.confidence
        return pd.DataFrame(data)


def _finite_list(values: np.ndarray, finite: np.ndarray) -> list[float | None]:
    out = values.tolist()
    if not finite.all():
        out = [v if ok else None for v, ok in zip(out, finite.tolist(), strict=True)]
    return out
