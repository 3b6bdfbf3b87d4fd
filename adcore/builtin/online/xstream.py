"""xStream: half-space chains over StreamHash projections (Manzoor, Lamba & Akoglu, 2018)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from adcore.builtin.online.base import OnlineDetector, check_int, mix, odd_multipliers, row_mean, to_int

#: Slots per (chain, depth) count table, as a power of two: two windows of 256 records fill at
#: most 512 cells of a level, so few share a slot (sharing only raises a count).
_SLOT_BITS = 10


class XStreamParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_components: int = Field(
        100, ge=1, le=10_000, description="StreamHash projections (the sketch's dimension)."
    )
    n_chains: int = Field(50, ge=1, le=10_000, description="Half-space chains in the ensemble.")
    depth: int = Field(
        8, ge=1, le=64, description="Levels per chain: each halves one projected feature's bins."
    )
    window_size: int = Field(
        256, ge=2, description="Records per window: counts cover about the last window_size records."
    )
    scale_records: int = Field(
        64,
        ge=1,
        description="First records whose spread fixes the feature scales and the chains' bin widths.",
    )
    random_state: int | None = Field(None, description="Seed for the projections, chain features and shifts.")


class OnlineXStream(OnlineDetector):
    """xStream, exact test-then-train over micro-batches.

    Features are robustly standardised (median and MAD of the first ``scale_records``
    records) and projected onto ``n_components`` sparse random directions (StreamHash:
    weights +-sqrt(3 / K) with probability 1/6 each, else 0). Each chain draws one projected
    feature per level and a shift per feature in ``[0, delta)``, where ``delta`` is half the
    calibration records' range of that feature; at the n-th split on a feature its bin width
    is ``delta / 2**(n - 1)``. A level's cell is the tuple of the bins so far, hashed. The
    score is ``-mean over chains of min over levels of (log2(1 + count) + level)``.

    The paper scores against the reference window alone (the last full one); here counts are
    the sliding-window estimate ``current + reference * (W - n) / W``, which follows a change
    within a few records instead of one to two windows (mean AP on the drifting generated
    streams of ``benchmarks/stream_quality.py``: 0.55 against 0.39 for reference-only
    scoring). The defaults (50 chains of depth 8, not the paper's 100 of 15) detect as well
    there (mean AP on the drifting streams 0.564 against 0.556) at about ten times the speed.
    """

    def __init__(
        self,
        n_components: int = 100,
        n_chains: int = 50,
        depth: int = 8,
        window_size: int = 256,
        scale_records: int = 64,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_chains = n_chains
        self.depth = depth
        self.window_size = window_size
        self.scale_records = scale_records
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("n_components", self.n_components, 1)
        check_int("n_chains", self.n_chains, 1)
        check_int("depth", self.depth, 1, 64)

    def _draw(self, rng: np.random.Generator, n_features: int) -> None:
        k, c, d = int(self.n_components), int(self.n_chains), int(self.depth)
        signs = rng.choice(np.array([-1.0, 0.0, 1.0]), p=[1 / 6, 2 / 3, 1 / 6], size=(k, n_features))
        self.projection_ = signs * np.sqrt(3.0 / k)
        self.chain_features_ = rng.integers(0, k, size=(c, d))
        # how many times each level's feature was split so far in its chain (1 at its first split)
        same = self.chain_features_[:, :, None] == self.chain_features_[:, None, :]
        self.split_counts_ = np.tril(same).sum(axis=2)
        self._unit_shifts = rng.random((c, k))
        self.multipliers_ = odd_multipliers(rng, (c, d))
        self.n_keys_ = (c * d) << _SLOT_BITS
        self._base = (np.arange(c * d, dtype=np.int64) << _SLOT_BITS).reshape(c, d)
        self._levels = np.arange(1, d + 1, dtype=np.float64)

    @property
    def _n_score_keys(self) -> int:
        return int(self.n_chains) * int(self.depth)

    def _project(self, Z: np.ndarray) -> np.ndarray:
        # einsum sums each row in a fixed order whatever the batch size (a BLAS product does
        # not), so a record's bins do not depend on the batch it arrives in.
        return np.einsum("nd,kd->nk", Z, self.projection_)

    def _calibrate(self, Z: np.ndarray) -> None:
        projected = self._project(Z)
        delta = (projected.max(axis=0) - projected.min(axis=0)) / 2.0
        delta = np.where(delta > 1e-4, delta, 1.0)
        chains = np.arange(int(self.n_chains))[:, None]
        shift = self._unit_shifts * delta
        self.shifts_ = shift[chains, self.chain_features_]
        self.scales_ = 2.0 ** (self.split_counts_ - 1) / delta[self.chain_features_]

    def _keys(self, Z: np.ndarray) -> np.ndarray:
        projected = self._project(Z)[:, self.chain_features_]
        bins = to_int((projected + self.shifts_) * self.scales_).view(np.uint64)
        # nested cells: the bins of levels 1..d identify the cell at level d
        hashed = mix(np.cumsum(bins * self.multipliers_, axis=2, dtype=np.uint64))
        keys = self._base + (hashed >> np.uint64(64 - _SLOT_BITS)).astype(np.int64)
        return keys.reshape(len(Z), -1)

    def _score_counts(self, counts: np.ndarray) -> np.ndarray:
        per_level = np.log2(1.0 + counts.reshape(len(counts), int(self.n_chains), int(self.depth)))
        return -row_mean((per_level + self._levels).min(axis=2))
