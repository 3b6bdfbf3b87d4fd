"""Score a file with a stored model in chunks, so its size is bounded by disk, not memory.

Rows are read ``chunk_size`` at a time (:func:`adcore.data.iter_dataset_chunks`), scored
with the stored detector and threshold, and appended to the output through
:class:`adcore.data.ScoreWriter`, which publishes the file only once it is whole. Memory
holds one chunk plus a running summary (counts, extremes, the top anomalies).
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from adcore.data import ScoreWriter, check_output_path, iter_dataset_chunks
from adcore.io.read_ahead import read_ahead
from adcore.services.models import Model

DEFAULT_CHUNK_SIZE = 100_000


@dataclass
class ScoreSummary:
    """What a chunked scoring run did: counts, extremes, timing and the most anomalous rows."""

    model: str | None
    n_rows: int = 0
    n_scored: int = 0
    n_anomalies: int = 0
    score_min: float = math.inf
    score_max: float = -math.inf
    seconds: float = 0.0
    chunks: int = 0
    output: str | None = None
    top: list[tuple[float, int, float]] = field(default_factory=list)  # (score, row, confidence) heap

    def add(
        self,
        first_row: int,
        kept: np.ndarray | None,
        scores: np.ndarray,
        labels: np.ndarray,
        n_input_rows: int,
        keep_top: int,
        confidence: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """Fold one chunk in; confidence is computed only for rows that may enter the top list."""
        self.chunks += 1
        self.n_rows += n_input_rows
        self.n_scored += int(scores.shape[0])
        if not scores.shape[0]:
            return
        self.n_anomalies += int(np.count_nonzero(labels))
        self.score_min = min(self.score_min, float(scores.min()))
        self.score_max = max(self.score_max, float(scores.max()))
        flagged = np.flatnonzero(labels == 1)
        best = flagged[np.argsort(-scores[flagged], kind="stable")[:keep_top]]
        for i, conf in zip(best, confidence(scores[best]), strict=True):
            row = first_row + int(kept[i] if kept is not None else i)
            item = (float(scores[i]), -row, float(conf))
            if len(self.top) < keep_top:
                heapq.heappush(self.top, item)
            else:
                heapq.heappushpop(self.top, item)

    def to_dict(self) -> dict[str, Any]:
        top = sorted(self.top, reverse=True)
        return {
            "model": self.model,
            "n_rows": self.n_rows,
            "n_scored": self.n_scored,
            "n_anomalies": self.n_anomalies,
            "score_min": self.score_min if self.n_scored else None,
            "score_max": self.score_max if self.n_scored else None,
            "seconds": round(self.seconds, 6),
            "rows_per_second": round(self.n_rows / self.seconds, 1) if self.seconds > 0 else None,
            "chunks": self.chunks,
            "output": self.output,
            "top_anomalies": [{"index": -row, "score": s, "confidence": c} for s, row, c in top],
        }


def score_file(
    model: Model,
    input_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    columns: list[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    keep_top: int = 10,
    fmt: str | None = None,
    stream: IO[bytes] | None = None,
    on_chunk: Callable[[int], object] | None = None,
    p_values: bool = False,
) -> ScoreSummary:
    """Score every row of ``input_path`` with ``model``; write one output row per input row.

    ``columns``/``header`` default to how the training file was read. The schema is
    checked before the first row is scored; a bad chunk anywhere aborts the output, so a
    partial file is never left behind. ``stream`` (an open binary file such as stdout, with
    ``fmt``) receives the rows instead of a file; ``on_chunk(n_input_rows)`` is called after
    each chunk, e.g. to advance a progress bar. ``p_values`` adds a ``p_value`` column (the
    model must be calibrated: fitted with ``--threshold fdr:Q``); it is checked before any row
    is read. With ``fdr:Q`` the labels are Benjamini-Hochberg's within each chunk.
    """
    started = time.perf_counter()
    if p_values:
        from adcore.domain.conformal import require_calibration

        require_calibration(model.detector)
    if output is not None and stream is None:
        check_output_path(output, fmt, inputs=(input_path,))  # never over the file being read
    opts = model.schema.read_options
    chunks = iter_dataset_chunks(
        input_path,
        chunk_size=chunk_size,
        columns=columns if columns is not None else opts.get("columns"),
        header=header if header is not None else opts.get("header"),
        nan_policy=nan_policy,
    )
    if _is_regular_file(input_path):
        # The next chunk is read while this one is scored and written. Local files only:
        # elsewhere (a remote object, a pipe) one read can wait indefinitely, and a failing
        # run must not wait for the reader to finish its chunk before it can stop.
        chunks = read_ahead(chunks)
    summary = ScoreSummary(model.ref, output=os.fspath(output) if output is not None else None)
    writer = _writer(output, fmt, stream)
    try:
        with contextlib.closing(chunks):
            for chunk in chunks:
                scores, labels = model.score_dataset(chunk)
                summary.add(
                    chunk.first_row,
                    chunk.kept_rows,
                    scores,
                    labels,
                    chunk.n_input_rows,
                    keep_top,
                    model.confidence,
                )
                if writer is not None:
                    extra = None
                    if p_values:
                        pv = model.detector.p_values_of_scores(scores)
                        extra = {"p_value": chunk.expand(pv, np.nan)}
                    writer.write(
                        chunk.expand(scores, np.nan),
                        chunk.expand(labels, -1),
                        passthrough=chunk.passthrough,
                        extra=extra,
                    )
                if on_chunk is not None:
                    on_chunk(chunk.n_input_rows)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _is_regular_file(path: str | os.PathLike) -> bool:
    name = os.fspath(path)
    return name != "-" and os.path.isfile(name)


def _writer(
    output: str | os.PathLike | None, fmt: str | None, stream: IO[bytes] | None
) -> ScoreWriter | None:
    """The output file's writer, the stream's (named ``<stdout>`` in messages), or none."""
    if stream is not None:
        return ScoreWriter(os.fspath(output) if output is not None else "<stdout>", fmt, stream=stream)
    return ScoreWriter(output, fmt) if output is not None else None
