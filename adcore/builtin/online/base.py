"""What every online detector shares: calibration, window counts and exact test-then-train.

The four detectors (LODA, RS-Hash, xStream, Half-Space Trees) are all *count sketches*:
each record is mapped to a few integer keys (a histogram bin per projection, a grid cell
per subspace, a node per tree level), and its score is a function of how many recent
records share those keys. This module owns everything but that mapping and that function:

- **Calibration.** Streams arrive unscaled, and a key needs a scale (a bin width, a grid
  size, a tree's work space). The first ``scale_records`` records fix it once: each
  detector derives its scales from them (robust spreads, or ranges), then learns them.
  Fixing the scale keeps every key stable, so counts stay exact and test-then-train stays
  exact; drift is absorbed by the windows (a shifted mean lands in fresh cells and the old
  ones are forgotten), not by rescaling. Before that, record ``i`` is scored by a
  provisional model calibrated on records ``0..i-1`` only, its counts shrunk towards "as
  ordinary as can be" in proportion to the calibration records still missing: scores start
  at record one, yet the first records, which nothing can judge yet, do not outrank the
  stream's anomalies (this alone lifts LODA's mean AP on the generated streams from 0.30 to
  0.40).
- **Windows.** Counts live in two arrays per sketch: the *reference* (the last full window)
  and the *current* window. Every ``window_size`` records they swap. A detector either
  scores against the reference alone (``"reference"``, as xStream's and Half-Space Trees'
  papers do; the first window is scored against what it has so far) or against the
  sliding-window estimate ``current + reference * (W - n) / W`` (``"sliding"``), which follows a
  change within a few records instead of one to two windows.
- **Exact prequential scoring.** :meth:`score_partial` scores row ``i`` of a micro-batch with
  the counts of every earlier row, vectorised: a batch is cut at window swaps, and the
  counts contributed by earlier rows of the same piece come from one sort of its keys
  (:func:`prior_counts`), never from a loop over records.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from adcore.errors import DataError, NotFittedError, ParameterError, SchemaMismatchError

#: |values| are clipped to this before they become int64 bin indices (exact up to 2**53).
_INT_LIMIT = float(2**52)
#: Scaled values are capped at this many calibration units (spreads or ranges).
_FAR = 1e12
#: What a record's counts are: the reference window's alone, or the sliding-window estimate.
Scoring = Literal["reference", "sliding"]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """A parameter that must be an integer in ``[low, high]`` (one-line ParameterError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, gt: float) -> float:
    """A parameter that must be a finite real number above ``gt``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value <= gt:
        raise ParameterError(f"{name} must be a finite number > {gt}, got {value!r}")
    return float(value)


def robust_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and a positive spread per column: 1.4826 MAD, else the std, else 1.

    Robust so that an anomaly among the calibration records does not blow up a bin width;
    the fallbacks keep binary and constant columns usable.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float64 limit
        center = np.median(X, axis=0)
        spread = 1.4826 * np.median(np.abs(X - center), axis=0)
        spread = np.where(np.isfinite(spread) & (spread > 0), spread, X.std(axis=0))
    return center, np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)


def range_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and a positive range per column (1 where the column is constant): maps to [0, 1]."""
    low = X.min(axis=0)
    with np.errstate(over="ignore"):
        width = X.max(axis=0) - low
    return low, np.where(np.isfinite(width) & (width > 0), width, 1.0)


def to_int(values: np.ndarray) -> np.ndarray:
    """Floor of float values as int64, clipped so that far outliers cannot overflow."""
    return np.floor(np.clip(values, -_INT_LIMIT, _INT_LIMIT)).astype(np.int64)


def mix(h: np.ndarray) -> np.ndarray:
    """A 64-bit avalanche (the finaliser of MurmurHash3) on uint64 arrays: nearby cells scatter."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def odd_multipliers(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random odd 64-bit multipliers for linear hashing of integer coordinates."""
    return rng.integers(0, 2**63, size=shape, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def row_mean(values: np.ndarray) -> np.ndarray:
    """Mean of each row, summed left to right.

    ``ndarray.mean(axis=1)`` may sum pairwise for one row and sequentially across many
    (numpy picks the loop by shape), which changes the last bits: a record's score would
    depend on its batch. A cumulative sum has one order.
    """
    return np.cumsum(values, axis=1)[:, -1] / values.shape[1]


def prior_counts(keys: np.ndarray) -> np.ndarray:
    """For each entry ``keys[i, s]``, how many earlier rows ``j < i`` hold the same key.

    One sort of ``key << b | position`` (unique, so a plain sort suffices): within a run of
    equal keys, positions come in row order, and an entry's rank in its run is its count.
    A row's own keys are distinct per column, so a key never repeats within one row.
    """
    m, s = keys.shape
    if m < 2:
        return np.zeros((m, s), dtype=np.int64)
    n = m * s
    bits = int(n - 1).bit_length()
    combined = np.sort((keys.ravel().astype(np.int64) << bits) | np.arange(n, dtype=np.int64))
    sorted_keys = combined >> bits
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    ranks = np.arange(n, dtype=np.int64) - np.repeat(first, np.diff(np.append(first, n)))
    out = np.empty(n, dtype=np.int64)
    out[combined & ((1 << bits) - 1)] = ranks
    return out.reshape(m, s)


class OnlineDetector:
    """Base of the count-sketch online detectors (see the module docstring).

    A subclass sets ``scoring`` and implements :meth:`_draw` (random structure, from the
    seed alone), :meth:`_calibrate` (scales, from the calibration records), :meth:`_keys`
    (a ``(n, S)`` int64 matrix of keys in ``[0, n_keys_)``) and :meth:`_score_counts`
    (scores from counts normalised to a full window; fewer counts = higher score).
    """

    #: Records needed before scores mean anything: from the second record a provisional
    #: model scores, so the stream needs no warm-up.
    min_records: ClassVar[int] = 1
    scoring: ClassVar[Scoring] = "sliding"
    #: How the calibration records set the feature scales (robust spread or range).
    _scale: ClassVar[str] = "robust"

    window_size: int
    scale_records: int
    random_state: int | None

    # ------------------------------------------------------------------ public API
    def fit(self, X: np.ndarray, y: object = None) -> OnlineDetector:
        """Forget everything, then learn ``X`` in row order."""
        self._reset()
        return self.partial_fit(X)

    def partial_fit(self, X: np.ndarray, y: object = None) -> OnlineDetector:
        """Learn ``X`` in row order, keeping what was learned before (the first call initialises)."""
        self._process(X, score=False)
        return self

    def score_partial(self, X: np.ndarray) -> np.ndarray:
        """Test then train: score row ``i`` with every earlier row learned, then learn all of ``X``.

        Equal to calling it one row at a time, but vectorised over the batch.
        """
        return self._process(X, score=True)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores of ``X`` (higher = more anomalous) against the current state; learns nothing."""
        if not hasattr(self, "n_seen_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit or partial_fit")
        X = self._check_X(X)
        if self.scale_ is None:
            return self._provisional(np.asarray(self.buffer_), X)
        keys = self._keys(self._scaled(X))
        counts, n_eff = self._state_counts(keys)
        return self._normalised_scores(counts, np.full(len(X), n_eff))

    # ------------------------------------------------------------------ subclass hooks
    def _draw(self, rng: np.random.Generator, n_features: int) -> None:
        raise NotImplementedError

    def _calibrate(self, Z: np.ndarray) -> None:
        """Data-dependent settings (bin widths...) from the scaled calibration records."""

    def _keys(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_counts(self, counts: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_params(self) -> None:
        """Validate the subclass's own parameters (ParameterError naming the parameter)."""

    # ------------------------------------------------------------------ machinery
    def _reset(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    def _initialise(self, n_features: int) -> None:
        self._window = check_int("window_size", self.window_size, 2)
        check_int("scale_records", self.scale_records, 1)
        self._check_params()
        seed = self.random_state
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ParameterError(f"random_state must be an integer or None, got {seed!r}")
        self.n_features_in_ = n_features
        self._draw(np.random.default_rng(seed), n_features)
        self.n_seen_ = 0
        self.buffer_: list[np.ndarray] = []
        self.scale_: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def _n_calibration(self) -> int:
        return min(int(self.scale_records), int(self.window_size))

    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError(f"expected a 2-D matrix of records, got shape {X.shape}")
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise SchemaMismatchError(
                f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}"
            )
        if not np.isfinite(X).all():
            raise DataError("X contains NaN or infinite values")
        return X

    def _process(self, X: Any, *, score: bool) -> np.ndarray:
        X = self._check_X(X)
        if not hasattr(self, "n_seen_"):
            self._initialise(X.shape[1])
        scores = np.zeros(len(X))
        start = 0
        while start < len(X) and self.scale_ is None:
            row = X[start : start + 1]
            if score:
                scores[start] = self._provisional(np.asarray(self.buffer_).reshape(-1, X.shape[1]), row)[0]
            self.buffer_.append(row[0].copy())
            self.n_seen_ += 1
            start += 1
            if len(self.buffer_) >= self._n_calibration:
                self._finish_calibration()
        if start < len(X):
            learned = self._learn(self._scaled(X[start:]), score=score)
            if score:
                scores[start:] = learned
            self.n_seen_ += len(X) - start
        return scores

    def _scales_from(self, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return robust_scale(B) if self._scale == "robust" else range_scale(B)

    def _finish_calibration(self) -> None:
        """Fix the scales from the calibration records, then learn them under those scales."""
        B = np.asarray(self.buffer_)
        self.scale_ = self._scales_from(B)
        Z = self._scaled(B)
        self._calibrate(Z)
        self.reference_ = np.zeros(self.n_keys_, dtype=np.int32)
        self.current_ = np.zeros(self.n_keys_, dtype=np.int32)
        self.n_current_ = 0
        self.n_reference_ = 0
        self.buffer_ = []
        self._learn(Z, score=False)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """Scaled features, capped at 1e12 calibration units: anything that far is just "far",
        and the cap keeps projections and products of values near the float64 limit finite."""
        center, spread = self.scale_
        with np.errstate(over="ignore"):
            return np.clip((X - center) / spread, -_FAR, _FAR)

    def _provisional(self, B: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Scores of ``X`` by a model calibrated on, and holding, the records ``B`` only.

        Used before calibration ends (a few dozen records): all of ``B`` is in the first
        window, so a key's count is how many rows of ``B`` share it.
        """
        if len(B) == 0:
            return self._score_counts(np.full((len(X), self._n_score_keys), float(self._window)))
        saved_scale, saved_settings = self.scale_, dict(vars(self))
        self.scale_ = self._scales_from(B)
        try:
            self._calibrate(self._scaled(B))
            keys_b = self._keys(self._scaled(B))
            keys_x = self._keys(self._scaled(X))
        finally:  # the provisional calibration must not outlive this call
            vars(self).clear()
            vars(self).update(saved_settings)
            self.scale_ = saved_scale
        counts = np.empty(keys_x.shape, dtype=np.float64)
        step = max(1, 2**22 // max(1, keys_b.size))
        for lo in range(0, len(X), step):
            chunk = keys_x[lo : lo + step]
            counts[lo : lo + step] = (chunk[:, None, :] == keys_b[None, :, :]).sum(axis=1)
        # Little evidence, little surprise: the counts are shrunk towards a full window's
        # (the most ordinary record) in proportion to the calibration still missing, so that
        # the first records, which nothing can judge yet, do not outrank the anomalies of the
        # stream, and the scores move smoothly into the calibrated model's.
        evidence = len(B) / self._n_calibration
        counts = evidence * counts * (self._window / len(B)) + (1.0 - evidence) * self._window
        return self._score_counts(counts)

    def _state_counts(self, keys: np.ndarray) -> tuple[np.ndarray, float]:
        """Counts and the number of records they stand for, as the state is now (no learning)."""
        n_cur, n_ref = self.n_current_, self.n_reference_
        if self.scoring == "reference" and n_ref:
            return self.reference_[keys].astype(np.float64), float(n_ref)
        if self.scoring == "reference" or not n_ref:
            return self.current_[keys].astype(np.float64), float(n_cur)
        weight = (self._window - n_cur) / self._window
        counts = self.current_[keys] + self.reference_[keys] * weight
        return counts, n_cur + n_ref * weight

    def _learn(self, Z: np.ndarray, *, score: bool) -> np.ndarray:
        """Learn (and optionally first score) scaled rows, cut where the windows swap."""
        scores = np.empty(len(Z)) if score else np.empty(0)
        start = 0
        while start < len(Z):
            stop = min(len(Z), start + self._window - self.n_current_)
            keys = self._keys(Z[start:stop])
            if score:
                scores[start:stop] = self._prequential_scores(keys)
            self.current_ += np.bincount(keys.ravel(), minlength=self.n_keys_).astype(np.int32)
            self.n_current_ += stop - start
            if self.n_current_ == self._window:
                self.reference_, self.current_ = self.current_, self.reference_
                self.current_[:] = 0
                self.n_current_ = 0
                self.n_reference_ = self._window
            start = stop
        return scores

    def _prequential_scores(self, keys: np.ndarray) -> np.ndarray:
        """Scores of a piece of a batch within one window, row i seeing rows < i."""
        m = len(keys)
        before = self.n_current_ + np.arange(m, dtype=np.float64)  # records in the window before row i
        if self.scoring == "reference" and self.n_reference_:
            counts = self.reference_[keys].astype(np.float64)
            return self._normalised_scores(counts, np.full(m, float(self.n_reference_)))
        current = self.current_[keys] + prior_counts(keys)
        if self.scoring == "reference" or not self.n_reference_:
            return self._normalised_scores(current.astype(np.float64), before)
        weight = (self._window - before) / self._window
        counts = current + self.reference_[keys] * weight[:, None]
        return self._normalised_scores(counts, before + self.n_reference_ * weight)

    def _normalised_scores(self, counts: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
        """Counts rescaled to a full window (what ``n_eff`` records would give ``window_size``)."""
        factor = self._window / np.maximum(n_eff, 1.0)
        return self._score_counts(counts * factor[:, None])

    @property
    def _n_score_keys(self) -> int:
        """Keys per record (columns of :meth:`_keys`)."""
        raise NotImplementedError
