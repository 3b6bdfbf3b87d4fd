"""Causal baseline detectors for time-series benchmarks: each score uses records up to its own.

They are the reference points a time-series detector is judged against, and the windowed
Gaussian doubles as an end-to-end check of the benchmark chain: re-implemented from NAB's
``windowedGaussian`` detector, its NAB score must come out where NAB's published one does.
"""

from __future__ import annotations

import math

import numpy as np

from adcore.errors import ParameterError


def null_scores(values: np.ndarray) -> np.ndarray:
    """The null detector: never alarms (NAB's 0 by construction)."""
    return np.zeros(np.asarray(values).shape[0])


def random_scores(values: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Uniform random scores: what a detector with no information earns."""
    return np.random.default_rng(seed).random(np.asarray(values).shape[0])


def windowed_gaussian_scores(values: np.ndarray, *, window: int = 6400, step: int = 100) -> np.ndarray:
    """NAB's windowed Gaussian: ``1 - Q(|z|)`` of each value under a normal fitted to the past.

    The reference grows from the first record up to ``window`` values, refitted after each
    record; once full it slides by ``step`` records at a time (NAB tuned 6400 and 100 on
    its corpus). The first record scores 0; a zero standard deviation is taken as 1e-6.
    ``1 - Q(|z|)`` saturates at exactly 1.0 beyond about 8.3 standard deviations, which is
    why NAB's optimal threshold for this detector is 1.0.
    """
    if window < 1 or step < 1:
        raise ParameterError("window and step must be positive")
    x = np.asarray(values, dtype=np.float64).ravel()
    scores = np.zeros(x.shape[0])
    mean, std = 0.0, 1.0
    start, stop = 0, 0  # the reference is x[start:stop]
    for i, value in enumerate(x):
        if stop > start:
            # NAB mirrors a value below the mean before standardising; same rounding here
            mirrored = 2.0 * mean - value if value < mean else value
            z = (mirrored - mean) / std
            scores[i] = 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))
        if stop - start < window:
            stop = i + 1
            refit = True
        else:
            refit = (i + 1 - stop) == step
            if refit:
                start, stop = start + step, i + 1
        if refit:
            ref = x[start:stop]
            mean, std = float(ref.mean()), float(ref.std())
            if std == 0.0:
                std = 1e-6
    return scores
