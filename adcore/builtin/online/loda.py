"""LODA: histograms on sparse random projections (Pevny, 2016), windowed for streams."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from adcore.builtin.online.base import OnlineDetector, check_int, robust_scale, row_mean, to_int

#: Slots per projection's histogram. Bins are unbounded integers folded into this many slots:
#: normal data spans a few dozen bins, so only far-apart bins ever share a slot.
_SLOTS = 1024


class LODAParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_projections: int = Field(
        100, ge=1, le=10_000, description="Sparse random projections, one histogram each."
    )
    n_bins: int = Field(
        10, ge=2, le=1000, description="Bins across six robust standard deviations of each projection."
    )
    window_size: int = Field(
        256, ge=2, description="Records per window: counts cover about the last window_size records."
    )
    scale_records: int = Field(
        64, ge=1, description="First records whose robust spread fixes the feature scales and bin widths."
    )
    random_state: int | None = Field(None, description="Seed for the projections and bin offsets.")


class OnlineLODA(OnlineDetector):
    """Lightweight on-line detector of anomalies (LODA), exact test-then-train over micro-batches.

    Each of ``n_projections`` projections uses about sqrt(d) robustly standardised features
    with Gaussian weights; its histogram has fixed-width bins (six robust standard
    deviations of the projected calibration records over ``n_bins``), randomly offset,
    unbounded (a bin far out is a fresh, empty bin rather than the edge bin: values far
    outside the seen range score high instead of saturating). The score is the mean over
    projections of ``-log2(1 + count)``, counts normalised to a window of records, so
    higher = rarer. Pevny's LODA keeps all history; here counts cover a sliding window
    (reference + current), so the model follows drifting streams.
    """

    def __init__(
        self,
        n_projections: int = 100,
        n_bins: int = 10,
        window_size: int = 256,
        scale_records: int = 64,
        random_state: int | None = None,
    ) -> None:
        self.n_projections = n_projections
        self.n_bins = n_bins
        self.window_size = window_size
        self.scale_records = scale_records
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("n_projections", self.n_projections, 1)
        check_int("n_bins", self.n_bins, 2)

    def _draw(self, rng: np.random.Generator, n_features: int) -> None:
        k = int(self.n_projections)
        nonzero = max(1, round(np.sqrt(n_features)))
        self.features_ = np.argsort(rng.random((k, n_features)), axis=1)[:, :nonzero]
        self.weights_ = rng.normal(size=(k, nonzero))
        self.offsets_ = rng.random(k)  # in bin widths
        self.n_keys_ = k * _SLOTS
        self._base = np.arange(k, dtype=np.int64) * _SLOTS

    @property
    def _n_score_keys(self) -> int:
        return int(self.n_projections)

    def _project(self, Z: np.ndarray) -> np.ndarray:
        # A sum over the few non-zero weights, term by term: each row's value is computed the
        # same way whatever the batch size (a BLAS product is not), so bins are exact.
        projected = Z[:, self.features_[:, 0]] * self.weights_[:, 0]
        for q in range(1, self.features_.shape[1]):
            projected += Z[:, self.features_[:, q]] * self.weights_[:, q]
        return projected

    def _calibrate(self, Z: np.ndarray) -> None:
        _, spread = robust_scale(self._project(Z))
        self.widths_ = 6.0 * spread / int(self.n_bins)

    def _keys(self, Z: np.ndarray) -> np.ndarray:
        bins = to_int(self._project(Z) / self.widths_ + self.offsets_)
        return self._base + (bins & (_SLOTS - 1))

    def _score_counts(self, counts: np.ndarray) -> np.ndarray:
        return -row_mean(np.log2(1.0 + counts))
