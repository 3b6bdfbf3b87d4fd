"""Anomaly likelihood: how improbable the recent raw scores are against their own history.

After Numenta's HTM "anomaly likelihood" (Ahmad et al. 2017, Neurocomputing 262), which NAB
credits with much of HTM's score; this is our own formulation of the idea, not a port:

1. the raw score is averaged over the last ``short`` records (one noisy record alone is not
   an anomaly; a sustained rise is);
2. the long-run distribution of those averages is a normal fitted to the last ``history``
   averages, re-estimated every ``block`` records (so it follows slow drift without chasing
   each anomaly). The history is kept as per-block means and sums of squared deviations,
   combined exactly (Chan et al.'s pairwise formula), so a history of 8,600 records costs
   86 pairs of floats, not 8,600 floats: what makes thousands of series affordable;
3. the likelihood is the upper-tail probability ``p = Q((a - mean) / std)``; a run of
   consecutive records with ``p <= red`` alarms once: records after the first in a run get
   ``p = yellow`` instead (NAB rewards the first detection in a window and charges every
   detection outside one, so repeats only cost);
4. the score is ``log(p) / log(1e-10)`` clipped to ``[0, 1]``: 0.5 at ``p = 1e-5``, spreading
   the rare tail over most of the range where a threshold is searched.

Until the first block is complete the score is 0 (too little history to judge).
"""

from __future__ import annotations

import math

import numpy as np

from adcore.timeseries.detectors.base import PostProcessor, Ring, positive_int

_LOG_FLOOR = math.log(1e-10)
_SQRT2 = math.sqrt(2.0)
#: math.erfc over an array: numpy has no erfc, and the point-by-point path uses math.erfc, so
#: both paths get the very same tail probabilities (core needs no scipy).
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def erfc(x: np.ndarray) -> np.ndarray:
    return _ERFC(x).astype(np.float64)


class AnomalyLikelihood(PostProcessor):
    """Rolling Gaussian tail probability of the recent mean raw score, as a score in [0, 1]."""

    def __init__(
        self,
        *,
        short: int = 10,
        history: int = 8600,
        block: int = 100,
        red: float = 1e-5,
        yellow: float = 1e-3,
        min_std: float = 1e-3,
    ) -> None:
        self.short = Ring(positive_int("short", short))
        self.block = positive_int("block", block, 2)
        n_blocks = max(1, positive_int("history", history) // self.block)
        self.block_mean = Ring(n_blocks)
        self.block_m2 = Ring(n_blocks)
        self.pending = np.zeros(self.block)  # averages of the block being filled
        self.n_pending = 0
        self.red, self.yellow, self.min_std = float(red), float(yellow), float(min_std)
        self.mean, self.std = 0.0, 1.0
        self.estimated = False
        self.prev_p = 1.0

    def _close_block(self, values: np.ndarray) -> None:
        """Add a full block of averages to the history and re-estimate from all blocks."""
        m = float(np.mean(values))
        self.block_mean.push(m)
        self.block_m2.push(float(np.sum((values - m) ** 2)))
        means, m2 = self.block_mean.view(), self.block_m2.view()
        mean = float(np.mean(means))
        var = (float(np.sum(m2)) + self.block * float(np.sum((means - mean) ** 2))) / (
            self.block * means.size
        )
        self.mean = mean
        self.std = max(math.sqrt(var), self.min_std)
        self.estimated = True

    def _score(self, avg: float) -> float:
        p = 0.5 * math.erfc((avg - self.mean) / self.std / _SQRT2)
        shown = self.yellow if (p <= self.red and self.prev_p <= self.red) else p
        self.prev_p = p
        return min(1.0, max(0.0, math.log(shown + 1e-10) / _LOG_FLOOR))

    def step(self, raw: float) -> float:
        self.short.push(raw)
        avg = float(np.mean(self.short.view()))
        score = self._score(avg) if self.estimated else 0.0
        self.pending[self.n_pending] = avg
        self.n_pending += 1
        if self.n_pending == self.block:
            self._close_block(self.pending)
            self.n_pending = 0
        return score

    def _averages(self, r: np.ndarray) -> np.ndarray:
        """Moving averages of the raw scores, the first ones over what the buffer holds."""
        n, k = r.size, self.short.size
        prior = self.short.view().copy()
        joined = np.concatenate((prior, r))
        avg = np.empty(n)
        full_from = max(0, k - prior.size)  # index in r of the first full window
        for i in range(min(full_from, n)):
            avg[i] = np.mean(joined[: prior.size + i + 1])
        if full_from < n:
            windows = np.lib.stride_tricks.sliding_window_view(joined, k)
            avg[full_from:] = windows[prior.size + full_from - k + 1 :].mean(axis=1)
        self.short.extend(r)
        return avg

    def batch(self, raw: np.ndarray) -> np.ndarray:
        r = np.asarray(raw, dtype=np.float64)
        n = r.size
        if n == 0:
            return np.zeros(0)
        avg = self._averages(r)
        mean, std, active = np.empty(n), np.empty(n), np.zeros(n, dtype=bool)
        start = 0
        while start < n:
            stop = min(n, start + self.block - self.n_pending)  # records until the block closes
            mean[start:stop], std[start:stop], active[start:stop] = self.mean, self.std, self.estimated
            self.pending[self.n_pending : self.n_pending + stop - start] = avg[start:stop]
            self.n_pending += stop - start
            if self.n_pending == self.block:
                self._close_block(self.pending)
                self.n_pending = 0
            start = stop
        score = np.zeros(n)
        if active.any():
            first = int(np.argmax(active))  # once estimated, always estimated
            p = 0.5 * erfc((avg[first:] - mean[first:]) / std[first:] / _SQRT2)
            p_prev = np.concatenate(([self.prev_p], p[:-1]))
            shown = np.where((p <= self.red) & (p_prev <= self.red), self.yellow, p)
            score[first:] = np.clip(np.log(shown + 1e-10) / _LOG_FLOOR, 0.0, 1.0)
            self.prev_p = float(p[-1])
        return score

    def state_nbytes(self) -> int:
        return self.short.nbytes + self.block_mean.nbytes + self.block_m2.nbytes + self.pending.nbytes + 5 * 8


class Squash(PostProcessor):
    """``r / (1 + r)`` of the raw score clipped at 0: a monotone map to [0, 1] with no state,
    for raw scorers whose scale is already comparable across series (z-like)."""

    def step(self, raw: float) -> float:
        r = max(0.0, raw)
        return r / (1.0 + r)

    def batch(self, raw: np.ndarray) -> np.ndarray:
        r = np.maximum(np.asarray(raw, dtype=np.float64), 0.0)
        return r / (1.0 + r)

    def state_nbytes(self) -> int:
        return 0
