"""What the dashboard shows: a bounded in-memory ring of recent detections and drift events.

A long-running server must not grow with its traffic, so each ring keeps the last
``size`` entries and each detection keeps a 30-bin score histogram instead of its
scores (a 50,000-row request costs the ring a few hundred bytes). The rings live in the
app, per worker process: they are a glance at recent traffic, not a history.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

from adcore.io.jsonio import finite_or_none

HISTOGRAM_BINS = 30


def histogram(scores: np.ndarray, threshold: float | None, bins: int = HISTOGRAM_BINS) -> dict[str, list]:
    """Counts of the finite scores in ``bins`` equal bins spanning the scores and the threshold.

    The threshold is inside the range on purpose, so the dashboard can always draw its line.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return {"edges": [], "counts": []}
    low, high = float(finite.min()), float(finite.max())
    if threshold is not None and np.isfinite(threshold):
        low, high = min(low, float(threshold)), max(high, float(threshold))
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


class Activity:
    """Thread-safe rings of recent detections and drift events, newest first when read."""

    def __init__(self, size: int) -> None:
        self._detections: deque[dict[str, Any]] = deque(maxlen=size)
        self._drift: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add_detection(
        self, result: Any, *, kind: str, model: str | None, duration_ms: float, time: str
    ) -> None:
        scores = np.asarray(result.scores, dtype=np.float64)
        finite = scores[np.isfinite(scores)]
        entry = {
            "id": result.id,
            "time": time,
            "kind": kind,
            "model": model,
            "algorithm": result.algorithm,
            "n_samples": result.n_samples,
            "n_anomalies": result.n_anomalies,
            "threshold": finite_or_none(result.threshold),
            "score_min": float(finite.min()) if finite.size else None,
            "score_max": float(finite.max()) if finite.size else None,
            "histogram": histogram(scores, result.threshold),
            "duration_ms": round(duration_ms, 3),
        }
        with self._lock:
            self._detections.append(entry)

    def add_drift(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._drift.append(event)

    def detections(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._detections))[:limit]

    def drift(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._drift))[:limit]
