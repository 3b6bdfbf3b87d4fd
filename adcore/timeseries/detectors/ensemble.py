"""Several time-series detectors on one series, their [0, 1] scores combined per record.

``max`` alarms when any member does (members that already post-process into rare alarms,
such as likelihoods, keep their false-positive rate roughly additive); ``mean`` needs
agreement. All members see every value, so the ensemble stays causal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adcore.errors import ParameterError
from adcore.timeseries.detectors.base import TimeSeriesDetector

_COMBINE = ("max", "mean")


class Ensemble:
    """Combine members' scores by ``max`` or ``mean``."""

    def __init__(self, members: Sequence[TimeSeriesDetector], *, combine: str = "max") -> None:
        if not members:
            raise ParameterError("an ensemble needs at least one member")
        if combine not in _COMBINE:
            raise ParameterError(f"combine must be one of {', '.join(_COMBINE)}, not {combine!r}")
        self.members = list(members)
        self.combine = combine
        self.name = "ensemble"

    def _reduce(self, scores: np.ndarray) -> np.ndarray:
        return scores.max(axis=0) if self.combine == "max" else scores.mean(axis=0)

    def fit(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> Ensemble:
        for member in self.members:
            member.fit(values, timestamps)
        return self

    def update_score(self, value: float, timestamp: object = None) -> float:
        scores = np.array([m.update_score(value, timestamp) for m in self.members])
        return float(self._reduce(scores[:, None])[0])

    def score_series(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        return self._reduce(np.stack([m.score_series(values, timestamps) for m in self.members]))

    def state_nbytes(self) -> int:
        return sum(m.state_nbytes() for m in self.members)
