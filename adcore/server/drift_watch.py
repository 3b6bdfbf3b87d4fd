"""Drift at a glance: each stored model's incoming scores tested against its training scores.

A model scored through the server sees a stream of requests; when their scores stop
looking like the scores of the training data, the model is going stale. Per model
version, a Kolmogorov-Smirnov detector (:class:`adcore.domain.drift.KSDrift`, the one
``adcore stream`` uses) keeps the last ``window`` scores and tests them against the
training scores; a detection becomes a ``drift.detected`` event. Detectors are created
on first use, kept for at most ``max_models`` versions (least recently used go), and
locked per model because parallel requests for one model update the same window.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np


class DriftWatch:
    """KS drift detectors keyed by ``name@version``."""

    def __init__(self, *, window: int, alpha: float, max_models: int) -> None:
        self.window = window
        self.alpha = alpha
        self.max_models = max_models
        self._detectors: OrderedDict[str, tuple[Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def _detector(self, ref: str, reference: np.ndarray) -> tuple[Any, threading.Lock]:
        from adcore.domain.drift import KSDrift

        with self._lock:
            entry = self._detectors.get(ref)
            if entry is None:
                entry = (KSDrift(reference=reference, window=self.window, alpha=self.alpha), threading.Lock())
                self._detectors[ref] = entry
            self._detectors.move_to_end(ref)
            while len(self._detectors) > self.max_models:
                self._detectors.popitem(last=False)
            return entry

    def update(self, ref: str, reference: np.ndarray, scores: np.ndarray) -> list[Any]:
        """Feed one request's scores; return the ``DriftSignal``s (``index`` counts every score fed)."""
        finite = np.asarray(scores, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0 or np.asarray(reference).size < 2:
            return []
        detector, lock = self._detector(ref, reference)
        with lock:
            return list(detector.update(finite))

    def forget(self, name: str, version: int | None = None) -> None:
        """Drop the detectors of a deleted model (one version, or all of them)."""
        with self._lock:
            for ref in list(self._detectors):
                ref_name, _, ref_version = ref.rpartition("@")
                if ref_name == name and (version is None or ref_version == str(version)):
                    del self._detectors[ref]
