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

The same memory is the calibration set of conformal p-values (``p_values=True``, and
``fdr:Q``): at each update point the held scores are sorted, and a record's p-value is
``(1 + #{held >= s}) / (held + 1)``. Prequential scores are out of sample (each record was
scored before the model learned it), which is what a calibration score must be; they are
exchangeable with the next records' while the stream is stationary, and the memory's
length bounds how far back the comparison reaches after a change. ``fdr:Q`` labels by
Benjamini-Hochberg over the records scored together (a segment of a micro-batch), with
those p-values; records before the memory settled get no p-value and no label.
"""

from __future__ import annotations

import math

import numpy as np

from adcore.domain.conformal import benjamini_hochberg, conformal_p_values, single_row_cut
from adcore.domain.thresholds import ThresholdSpec, compute_threshold, parse_threshold

#: Scores between two updates of the threshold, once it has settled.
DEFAULT_EVERY = 64


class FollowingThreshold:
    """The threshold of the last ``memory`` scores, updated at fixed record counts (see module)."""

    def __init__(
        self,
        method: str,
        contamination: float,
        memory: int,
        every: int = DEFAULT_EVERY,
        *,
        p_values: bool = False,
    ) -> None:
        self.spec: ThresholdSpec = parse_threshold(method)
        self.fdr = self.spec.method == "fdr"
        self.keeps_calibration = p_values or self.fdr
        self.calibration: np.ndarray | None = None  # sorted memory at the last update point
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
        if self.keeps_calibration:
            # Two update points: the first 64 scores of a young online model are on another scale
            # (it is still calibrating), and compared with them alone the next records look unusual.
            settle = max(settle, 2 * DEFAULT_EVERY)
        if self.fdr:  # enough calibration scores for a p-value of 1 / (n + 1) to reach Q / 2
            settle = max(settle, math.ceil(2.0 / float(self.spec.value)))  # type: ignore[arg-type]
        self.settle = min(self.memory, settle)

    def reset(self, scores: np.ndarray | None = None) -> None:
        """Forget the scores (a new model scores on another scale); ``scores`` seed the memory.

        A refit's training scores are the best guess of the new model's scale until its own
        out-of-sample scores arrive. Not with p-values: in-sample scores are lower than a new
        record's, so a calibration set of them would make every p-value too small; the memory
        then starts empty and settles on the new model's own prequential scores.
        """
        self._pos = self._count = self._seen = 0
        self.calibration = None
        if self.spec.method != "fixed":
            self.value = math.inf
        if scores is not None and len(scores) and not self.keeps_calibration:
            self._remember(scores)
            self._update()

    def labels(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0/1 labels of ``scores`` (in stream order) and the threshold each was compared with."""
        labels, thresholds, _ = self.labels_and_p_values(scores)
        return labels, thresholds

    def labels_and_p_values(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`labels`, and each record's p-value (NaN before the memory settled) when kept.

        ``fdr:Q``: the labels are Benjamini-Hochberg's over ``scores`` (a record without a
        p-value counts as p = 1), and the thresholds the cut of a record scored alone.
        """
        n = len(scores)
        labels = np.zeros(n, dtype=np.int64)
        thresholds = np.empty(n, dtype=np.float64)
        p_values = np.full(n, np.nan) if self.keeps_calibration else None
        i = 0
        while i < n:
            k = min(n - i, self._until_update())
            block = scores[i : i + k]
            thresholds[i : i + k] = self.value
            if not self.fdr:
                labels[i : i + k] = block > self.value
            if p_values is not None and self.calibration is not None:
                p_values[i : i + k] = conformal_p_values(block, self.calibration)
            self._remember(block)
            self._seen += k
            i += k
            if self._is_update_point():
                self._update()
        if self.fdr and p_values is not None:
            tested = np.where(np.isnan(p_values), 1.0, p_values)
            labels = benjamini_hochberg(tested, float(self.spec.value)).astype(np.int64)  # type: ignore[arg-type]
        return labels, thresholds, p_values

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
        if self._count < self.settle or (self.spec.method == "fixed" and not self.keeps_calibration):
            return
        held = self._buf[: self._count] if self._count < self.memory else self._buf
        if self.keeps_calibration:
            self.calibration = np.sort(held)
        if self.spec.method == "fixed":
            return
        if self.fdr:
            self.value = single_row_cut(self.calibration, float(self.spec.value))  # type: ignore[arg-type]
        elif self.spec.method == "contamination":
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
