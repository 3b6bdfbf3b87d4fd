"""Labels for an online detector: a threshold that follows the stream, causally.

An online detector has no training scores to take a threshold from, and its scores drift
as it learns. The stream's own recent scores stand in: the threshold is the ``--threshold``
rule (``contamination``: the (1 - contamination) quantile; ``mad:k``, ``iqr:k``,
``zscore:k``; ``fixed:VALUE`` as given) applied to the last ``memory`` finite scores.

It waits until it has seen enough scores to mean something: no record is labelled before
``settle`` scores are held (``DEFAULT_EVERY``, and for ``contamination`` at least
``5 / contamination``, so a 1% quantile is not read off a few dozen scores). An online
detector's first scores come from a model still calibrating its scales, and a quantile of
two or four of them labels most of the next records: paging on start-up is what users
learn to ignore. The records are still scored; only their labels wait.

It is causal: a record's label uses only the scores of records before it. And it is
independent of the micro-batch size: the threshold is recomputed at fixed record counts
(after 2, 4, 8 ... scores, then every ``every`` scores), never at batch boundaries, so
``--batch-size 1`` and ``--batch-size 1000`` label every record alike. Between two such
points the labels of a whole block are one vectorised comparison.
"""

from __future__ import annotations

import math

import numpy as np

from adcore.domain.thresholds import ThresholdSpec, compute_threshold, parse_threshold

#: Scores between two updates of the threshold, once it has settled.
DEFAULT_EVERY = 64


class FollowingThreshold:
    """The threshold of the last ``memory`` scores, updated at fixed record counts (see module)."""

    def __init__(self, method: str, contamination: float, memory: int, every: int = DEFAULT_EVERY) -> None:
        self.spec: ThresholdSpec = parse_threshold(method)
        self.contamination = contamination
        self.memory = max(2, int(memory))
        self.every = max(1, int(every))
        self.value = math.inf if self.spec.method != "fixed" else float(self.spec.value)  # type: ignore[arg-type]
        self._buf = np.empty(self.memory, dtype=np.float64)
        self._pos = 0  # where the next score goes
        self._count = 0  # finite scores held
        self._seen = 0  # scores labelled since the last reset (update points count these)
        settle = DEFAULT_EVERY
        if self.spec.method == "contamination" and contamination > 0:
            settle = max(settle, math.ceil(5.0 / contamination))
        self.settle = min(self.memory, settle)

    def reset(self, scores: np.ndarray | None = None) -> None:
        """Forget the scores (a new model scores on another scale); ``scores`` seed the memory.

        A refit's training scores are the best guess of the new model's scale until its own
        out-of-sample scores arrive.
        """
        self._pos = self._count = self._seen = 0
        if self.spec.method != "fixed":
            self.value = math.inf
        if scores is not None and len(scores):
            self._remember(scores)
            self._update()

    def labels(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0/1 labels of ``scores`` (in stream order) and the threshold each was compared with."""
        n = len(scores)
        labels = np.zeros(n, dtype=np.int64)
        thresholds = np.empty(n, dtype=np.float64)
        i = 0
        while i < n:
            k = min(n - i, self._until_update())
            block = scores[i : i + k]
            thresholds[i : i + k] = self.value
            labels[i : i + k] = block > self.value
            self._remember(block)
            self._seen += k
            i += k
            if self._is_update_point():
                self._update()
        return labels, thresholds

    def _is_update_point(self) -> bool:
        seen = self._seen
        if seen < self.every:
            return seen >= 2 and seen & (seen - 1) == 0  # a power of two
        return seen % self.every == 0

    def _until_update(self) -> int:
        """Scores until the next update point (at least 1)."""
        seen = self._seen
        if seen < self.every:
            nxt = 2
            while nxt <= seen:
                nxt *= 2
            return min(nxt, self.every) - seen
        return self.every - seen % self.every

    def _remember(self, scores: np.ndarray) -> None:
        finite = scores[np.isfinite(scores)]
        if len(finite) >= self.memory:
            self._buf[:] = finite[-self.memory :]
            self._pos, self._count = 0, self.memory
            return
        first = min(len(finite), self.memory - self._pos)
        self._buf[self._pos : self._pos + first] = finite[:first]
        self._buf[: len(finite) - first] = finite[first:]
        self._pos = (self._pos + len(finite)) % self.memory
        self._count = min(self._count + len(finite), self.memory)

    def _update(self) -> None:
        if self.spec.method == "fixed" or self._count < self.settle:
            return
        held = self._buf[: self._count] if self._count < self.memory else self._buf
        if self.spec.method == "contamination":
            self.value = _percentile(held, 1.0 - self.contamination)
        else:
            self.value = compute_threshold(held, self.spec, self.contamination)


def _percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, 100 q)`` (linear interpolation) from one partial sort.

    The threshold is recomputed every few dozen records; ``np.percentile``'s own overhead
    would be a sixth of an online stream's time, a partition of the two neighbours is not.
    """
    n = len(values)
    position = q * (n - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, n - 1)
    part = np.partition(values, [lo, hi]) if hi != lo else np.partition(values, lo)
    low, high = float(part[lo]), float(part[hi])
    return low + (high - low) * (position - lo)
