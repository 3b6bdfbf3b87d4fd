"""The streaming service: score records as they arrive, watch for drift, retrain.

Per micro-batch (see :mod:`adcore.services.streaming.batching`):

1. decode the lines (:class:`~adcore.services.streaming.records.RecordDecoder`); malformed ones go to
   the dead-letter sink or one line each on stderr, never stopping the stream; so do records
   the detector refuses to score because of their data (a ``DataError``);
2. walk the valid records in *segments* so that per-record semantics do not depend on the
   batch size: warm-up records (before the first fit) are emitted with ``warmup: true`` and
   a null score; a young model's refits as its data grows (:mod:`~adcore.services.streaming.warmup`)
   and ``--retrain every:N`` split the batch exactly there, so the records after a refit are
   scored by the new model; so do the drift checks (every half drift window), and each
   scored segment feeds the drift detector: a drift with ``--retrain on-drift`` refits at
   the end of that segment, on the records since the drift;
   an online detector scores each segment test-then-train (``score_partial``: no refits
   needed), labelled by a threshold that follows its recent scores
   (:mod:`~adcore.services.streaming.threshold`);
   ``--output-p-values`` adds each record's conformal p-value (the window model's calibration
   set, or the online threshold's memory: :mod:`~adcore.domain.conformal`), and ``fdr:Q`` labels
   by Benjamini-Hochberg over each scored segment; ``--min-anomalies K --within N`` (and
   ``--suppress``, ``--alert-key``) gate the ``anomaly.detected`` events, not the labels
   (:mod:`~adcore.services.streaming.alert_rule`);
3. write one output line per valid record, in order, and ``sink.flush()``;
4. publish the batch's events (``detection.completed`` last), flush the event sinks, and
   only then ``source.commit()``: everything a batch caused is delivered before its input
   is acknowledged (at-least-once).

Errors: user errors are typed (:mod:`adcore.errors`). A refit that fails with one publishes
``model.refit_failed`` and the previous model goes on scoring; the *first* fit has nothing to
fall back on, so its failure ends the stream (exit 2 on the CLI), checked before the first
warm-up record is written where a fit on noise can tell (:meth:`StreamModel.check_first_fit`).
Any other exception is a bug and propagates.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from adcore.domain.events import (
    AnomalyDetected,
    DetectionCompleted,
    DriftDetected,
    Event,
    EventBus,
    ModelRetrained,
    ModelSaved,
    RefitFailed,
)
from adcore.domain.thresholds import is_fdr
from adcore.errors import AdcoreError, DataError, SchemaMismatchError
from adcore.io import jsonio
from adcore.messaging import Item, Sink, Source
from adcore.services import tracing
from adcore.services.streaming.alert_rule import AlertRule
from adcore.services.streaming.batching import MicroBatcher
from adcore.services.streaming.config import StreamConfig
from adcore.services.streaming.model import StreamModel
from adcore.services.streaming.records import DecodedBatch, Malformed, OutputEncoder, RecordDecoder
from adcore.services.streaming.threshold import FollowingThreshold
from adcore.services.streaming.warmup import next_growth
from adcore.services.streaming.windows import make_window


@dataclass
class StreamStats:
    """Counts for one run (what the CLI summarises on stderr)."""

    lines: int = 0
    records: int = 0
    scored: int = 0
    warmup: int = 0
    malformed: int = 0
    rejected: int = 0  # valid records the detector refused to score (dead letters)
    anomalies: int = 0
    drifts: int = 0
    retrains: int = 0
    refit_failures: int = 0
    unscored: int = 0  # valid records read but not scored because the stream failed (dead letters)
    batches: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stderr(message: str) -> None:
    import sys

    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _one_line(exc: BaseException) -> str:
    """An error's message as one line (what a report, a dead letter or an event carries)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@dataclass
class _Done:
    """The output lines made so far in a batch, and how many of its records they account for."""

    lines: list[bytes] = field(default_factory=list)
    records: int = 0

    def add(self, lines: list[bytes], records: int) -> None:
        self.lines += lines
        self.records += records


def plural_records(n: int) -> str:
    return f"{n} record{'' if n == 1 else 's'}"


def _stopped_by(exc: BaseException) -> str:
    """Why the stream stopped, as a dead letter's reason says it."""
    if isinstance(exc, AdcoreError):
        return f"the stream stopped: {_one_line(exc)}"
    if isinstance(exc, Exception):
        return f"the stream stopped on an unexpected {type(exc).__name__}: {_one_line(exc)}"
    return f"the stream was interrupted ({type(exc).__name__})"


def _field(record: Any, name: str) -> Any:
    """A record's ``--alert-key`` field (a dict's key or a typed record's attribute; None if absent)."""
    if hasattr(record, "get"):
        return record.get(name)
    return getattr(record, name, None)


def _plain(metadata: Any) -> dict[str, Any] | None:
    """Transport metadata as a plain dict (events must serialise with any JSON library)."""
    return None if metadata is None else dict(metadata)


class StreamingService:
    """Runs one stream from ``source`` to ``sink``; see the module docstring.

    ``config`` must come from :meth:`StreamConfig.validated`. ``report`` receives one line
    per malformed record (when there is no ``dead_letter`` sink) and per listener failure.
    """

    def __init__(
        self,
        source: Source,
        sink: Sink,
        model: StreamModel,
        config: StreamConfig,
        *,
        events: EventBus | None = None,
        dead_letter: Sink | None = None,
        report: Callable[[str], None] = _stderr,
        stream_id: str | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.model = model
        self.config = config
        self.policy = config.policy
        self.events = events or EventBus()
        # A source may bring its own dead-letter sink (adcore-kafka's ?dlq=TOPIC).
        self.dead_letter = dead_letter if dead_letter is not None else getattr(source, "dead_letter", None)
        self.report = report
        self.stream_id = stream_id or str(uuid.uuid4())
        self.stats = StreamStats()
        self._stop = threading.Event()
        if (
            config.features is not None
            and model.n_features is not None
            and len(config.features) != model.n_features
        ):
            raise SchemaMismatchError(
                f"--features names {len(config.features)} features but {model.label or 'the model'} "
                f"was trained on {model.n_features}"
            )
        features = config.features if config.features is not None else model.feature_names
        self.decoder = RecordDecoder(
            features,
            n_features=None if features else model.n_features,
            max_record_bytes=config.max_record_bytes,
        )
        self.encoder: OutputEncoder | None = None
        self.window = make_window(config.window_type, config.window)
        # Test-then-train (an online detector, unless --retrain never freezes it into a window one).
        self.learning = model.online and self.policy.mode != "never"
        #: Records a young model (at the start, after a drift) is first fitted on.
        given = config.warmup
        self.fit_size = int(given) if given is not None else model.window_warmup(config.window)
        if model.fitted:
            self.warmup = 0  # a stored model scores from the first record
        elif self.learning:
            self.warmup = int(config.warmup) if config.warmup is not None else model.min_records - 1
        else:
            self.warmup = self.fit_size
        self.offset = 0  # valid records so far = offset of the next output record (= window.n_seen)
        self._since_fit = 0
        self._grow_from = 0  # the offset a young model's training data starts at
        self._grow_at: int | None = None  # the offset of its next refit as the data grows
        self._threshold: FollowingThreshold | None = None
        params = model.template_params
        self._fdr = is_fdr(params.get("threshold"))
        self.p_values = config.p_values
        if self.learning:
            self._threshold = FollowingThreshold(
                str(params.get("threshold") or "contamination"),
                float(params.get("contamination") or 0.1),
                memory=config.window,
                p_values=config.p_values,
            )
            if model.fitted:  # a stored model's training scores set the scale until its own come
                self._threshold.reset(getattr(model.detector, "decision_scores_", None))
        else:
            # A window model's p-values need its refits calibrated; a stored one must be already.
            model.calibrate = config.p_values or self._fdr
            if model.fitted and model.calibrate:
                from adcore.domain.conformal import require_calibration

                require_calibration(model.detector)
        if self._fdr:
            self._warn_fdr_resolution(str(params.get("threshold")))
        self._alerts = AlertRule(config.min_anomalies, config.within, config.suppress)
        self._alert_key = config.alert_key
        self._drift: Any = None
        self._drift_fed = 0
        self._pending: list[Event] = []
        if config.drift != "none":
            self._drift = self._make_drift(features)  # now, so a bad --drift-param fails before any read
        self._drift_every = self._drift_cadence()

    def _warn_fdr_resolution(self, threshold: str) -> None:
        """Say so when ``fdr:Q`` can never label a full batch's record anomalous.

        The smallest p-value a calibration set of ``W`` scores gives is ``1 / (W + 1)``, and BH
        over ``B`` records rejects nothing unless some p-value is at most ``Q / B``.
        """
        from adcore.domain.thresholds import parse_threshold

        q = float(parse_threshold(threshold).value)  # type: ignore[arg-type]
        window, batch = self.config.window, self.config.batch_size
        stored = getattr(self.model.detector, "calibration_scores_", None)
        if stored is not None and self.policy.mode == "never":  # a stored model keeps its own
            window = int(stored.shape[0])
        if 1.0 / (window + 1) > q / batch:
            most = max(1, int(q * (window + 1)))
            self.report(
                f"note: --threshold {threshold} tests each scored segment with Benjamini-Hochberg; with "
                f"{window} calibration scores no p-value is below 1/{window + 1}, so a segment of more "
                f"than {most} records never has an anomaly: use --batch-size {most} or less, or a larger "
                "--window"
            )

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Finish the current batch, flush, and return from :meth:`run` (SIGTERM handler)."""
        self._stop.set()

    def run(self) -> StreamStats:
        """Process the stream until it ends or :meth:`stop` is called; returns the counts."""
        started = time.perf_counter()
        batcher = MicroBatcher(
            self.source,
            batch_size=self.config.batch_size,
            max_delay=self.config.max_delay_ms / 1000.0,
            stop=self._stop,
        )
        retain = getattr(self.source, "retain", None)
        try:
            while True:
                items = batcher.next_batch()
                if items and retain is not None:
                    items = retain(items)  # a Kafka rebalance may have taken some partitions away
                if items:
                    with self._batch_span(len(items)):
                        self.process(items)
                if batcher.ended or self._stop.is_set():
                    break
            self._release_held_alerts()
        finally:
            self.stats.seconds = time.perf_counter() - started
        return self.stats

    def _batch_span(self, records: int) -> Any:
        """The ``adcore.stream.batch`` span (a no-op when tracing is off).

        A source that keeps its records' W3C trace context (adcore-kafka reads the
        ``traceparent`` header) hands them over through ``take_trace_contexts()``: the batch
        continues the upstream trace when all its records share one, and links to each
        otherwise, since one batch merges records from many producers.
        """
        if not tracing.enabled():
            return tracing.span("adcore.stream.batch")
        take = getattr(self.source, "take_trace_contexts", None)
        carriers = list(take()) if callable(take) else []
        parents = {c.get("traceparent") for c in carriers}
        return tracing.span(
            "adcore.stream.batch",
            context=carriers[0] if len(parents) == 1 else None,
            links=carriers if len(parents) > 1 else (),
            stream=self.stream_id,
            records=records,
            model=self.model.label,
        )

    # -------------------------------------------------------------- one batch
    def process(self, items: list[Item]) -> None:
        """Decode, score, write and acknowledge one micro-batch (public for embedding/tests).

        Whatever fails, no record read vanishes: on an exception (a first fit that cannot
        work, a bug) the output lines already made are written, the batch's other records go
        to the dead letters, both are flushed, and only then does the exception propagate.
        """
        started = time.perf_counter()
        batch = self.decoder.decode(items)
        self.stats.lines += len(items)
        self.stats.batches += 1
        self._handle_malformed(batch.malformed)
        first = self.offset
        counts = {"scored": 0, "warmup": 0, "anomalies": 0}
        refused: list[int] = []  # indices in the batch of records the detector refused
        done = _Done()
        try:
            self._prepare(batch)
            if len(batch):
                self._score_segments(batch, counts, refused, done)
        except BaseException as exc:
            self._salvage(batch, done, refused, exc)
            raise
        try:
            self._write_many(done.lines, self._written_metadata(batch, refused, len(batch)))
            self.sink.flush()
        except BrokenPipeError:
            raise  # the reader left on purpose (| head): nothing to keep, nothing to say
        except BaseException as exc:  # a full disk: the records can still reach the dead letters
            self._keep_unwritten(batch, 0, refused, f"not written: {_stopped_by(exc)}")
            raise
        if self.dead_letter is not None and (batch.malformed or refused):
            self.dead_letter.flush()
        n = self.offset - first
        self.stats.records += n
        if self.events.wants(DetectionCompleted.type):
            self._emit(
                DetectionCompleted(
                    stream=self.stream_id,
                    records=n,
                    scored=counts["scored"],
                    warmup=counts["warmup"],
                    anomalies=counts["anomalies"],
                    malformed=len(batch.malformed),
                    first_offset=first if n else None,
                    last_offset=first + n - 1 if n else None,
                    model=self.model.label,
                    threshold=self.threshold,
                    duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
                    rejected=len(refused),
                )
            )
        self._publish_pending()
        self.source.commit()

    def _prepare(self, batch: DecodedBatch) -> None:
        """Once the features are known: the output encoder, and the first fit checked in advance."""
        if self.encoder is None and self.decoder.features is not None:
            self._on_features_known(self.decoder.features)
            if not self.model.fitted and not self.learning and len(batch) < self.warmup:
                # Warm-up records will be written before the first fit: check it can happen.
                self.model.check_first_fit(self.warmup, len(self.decoder.features))

    @staticmethod
    def _written_metadata(batch: DecodedBatch, refused: list[int], upto: int) -> list[Any]:
        """The metadata of the output lines for records ``0:upto`` (refused records have none)."""
        metadata = batch.metadata[:upto] if upto < len(batch) else batch.metadata
        if not refused:
            return metadata
        dropped = set(refused)
        return [m for i, m in enumerate(metadata) if i not in dropped]

    def _salvage(self, batch: DecodedBatch, done: _Done, refused: list[int], exc: BaseException) -> None:
        """Before ``exc`` ends the stream: write what was made, dead-letter the rest, flush both.

        Records read from stdin cannot be read again, so every one is either in the output
        (warm-up records already encoded are written, as they would have been) or in the
        dead letters with the reason; nothing here may hide ``exc``, so its own failures
        (a sink that is the cause) are suppressed.
        """
        with contextlib.suppress(Exception):
            self._write_many(done.lines, self._written_metadata(batch, refused, done.records))
            self.stats.records += len(done.lines)
        with contextlib.suppress(Exception):
            self.sink.flush()
        self._keep_unwritten(batch, done.records, refused, f"not scored: {_stopped_by(exc)}")

    def _keep_unwritten(self, batch: DecodedBatch, start: int, refused: list[int], reason: str) -> None:
        """Dead-letter the batch's records from ``start`` on (refused ones already are), then flush.

        Called on the way out of a failing stream, so it never raises itself.
        """
        dropped = set(refused)
        rest = [i for i in range(start, len(batch)) if i not in dropped]
        with contextlib.suppress(Exception):
            self._unscored([batch.rejected(i, reason) for i in rest], reason)
        if self.dead_letter is not None:
            with contextlib.suppress(Exception):
                self.dead_letter.flush()

    def _unscored(self, letters: list[Malformed], reason: str) -> None:
        """Records the stream read but could not score: dead letters, or one report line."""
        if not letters:
            return
        self.stats.unscored += len(letters)
        if self.dead_letter is not None:
            self._dead_letters(letters)
            return
        lines = f"line {letters[0].line_number}"
        if len(letters) > 1:
            lines = f"lines {letters[0].line_number}-{letters[-1].line_number}"
        self.report(
            f"{plural_records(len(letters))} read but not written ({lines}; "
            f"a dead-letter sink keeps them): {reason}"
        )

    def _write_many(self, lines: list[bytes], metadata: list[Any]) -> None:
        if not lines:
            return
        many = getattr(self.sink, "write_many", None)
        if many is not None:
            many(lines, metadata)
            return
        write = self.sink.write
        for line, meta in zip(lines, metadata, strict=True):
            write(line, meta)

    def _on_features_known(self, features: list[str]) -> None:
        inferred = self.config.features is None and self.model.feature_names is None
        self.encoder = OutputEncoder(
            features, keep_features=self.config.keep_features, p_values=self.config.p_values
        )
        if self._drift is not None and inferred:
            self._drift = self._make_drift(features)  # now the drifted feature can be named

    def _make_drift(self, features: list[str] | None) -> Any:
        from adcore.domain.drift import create_drift_detector

        names = list(features) if features and self.config.drift_on == "features" else None
        return create_drift_detector(self.config.drift, feature_names=names, **dict(self.config.drift_params))

    def _score_segments(
        self, batch: DecodedBatch, counts: dict[str, int], refused: list[int], done: _Done
    ) -> None:
        """The output lines of the batch's valid records, in order, into ``done``.

        ``refused`` gets the records left out; ``done.records`` says how many records the
        lines account for, so a failure part-way loses none (see :meth:`_salvage`).
        """
        assert self.encoder is not None
        X, records, metas = batch.X, batch.records, batch.metadata
        n = len(records)
        i = 0
        while i < n:
            if self.offset < self.warmup:
                k = min(n - i, self.warmup - self.offset)
                done.add(self.encoder.encode(records[i : i + k], metas[i : i + k], None, None, model=None), k)
                self.window.extend(X[i : i + k])
                if self.learning:
                    self.model.learn(X[i : i + k])
                counts["warmup"] += k
                self.stats.warmup += k
                i += k
                self.offset += k
                if self.offset >= self.warmup and not self.learning:
                    self._refit("initial", self._young_rows(0))
                continue
            k = min(n - i, self._until_next_fit())
            done.add(self._score(batch, i, i + k, counts, refused), k)
            i += k
            self._refit_when_due()

    def _until_next_fit(self) -> int:
        """Records until the next refit or drift check fixed in advance; large when none.

        Growth, ``every:N`` and the drift checks all land on fixed record counts, so a
        segment never spans one: refits, drift events and so every output line are the same
        whatever the batch size.
        """
        until = 1 << 62
        if self.policy.mode == "every":
            until = int(self.policy.every or 1) - self._since_fit
        if self._grow_at is not None:
            until = min(until, self._grow_at - self.offset)
        if self._drift_every:
            until = min(until, self._drift_every - self.offset % self._drift_every)
        return max(1, until)

    def _drift_cadence(self) -> int:
        """Records between two drift checks (0: no drift detector).

        A windowed test (``ks``, ``psi``) runs at most once per update, once half its window
        is new: fed in half windows, it tests as often as it can. The sequential ones
        (``adwin``, ``page-hinkley``) find the drift point themselves; checking every 64
        records bounds how long the model that missed it goes on scoring.
        """
        if self._drift is None:
            return 0
        window = getattr(self._drift, "window", None)
        if isinstance(window, int) and window >= 2:
            return max(1, window // 2)
        return 64

    def _refit_when_due(self) -> None:
        if self._grow_at is not None and self.offset >= self._grow_at:
            self._refit("growing", self._young_rows(self._grow_from))
        elif self.policy.mode == "every" and self._since_fit >= int(self.policy.every or 1):
            self._refit("periodic", self.window.contents())

    def _young_rows(self, start: int) -> np.ndarray:
        """The training rows of a young model whose data starts at offset ``start``; plans its growth.

        Below a full window, the records since ``start`` (all of them: a small model soon
        replaced by a bigger one, see :mod:`~adcore.services.streaming.warmup`); then the
        window, as the retrain policy has it. An online detector that learns does not grow:
        it learns every record anyway.
        """
        have = self.offset - start
        size = self.window.size
        self._grow_from = start
        self._grow_at = None
        if have >= size:
            return self.window.contents()
        if not self.learning:
            point = next_growth(have, self.fit_size, size)
            self._grow_at = None if point is None else start + point
        return self.window.recent(have)

    @property
    def threshold(self) -> float | None:
        """The threshold labelling the next record: the model's, or the one following an online stream."""
        if self._threshold is not None:
            value = self._threshold.value
            return value if np.isfinite(value) else None
        return self.model.threshold

    def _score(
        self, batch: DecodedBatch, start: int, stop: int, counts: dict[str, int], refused: list[int]
    ) -> list[bytes]:
        """Score records ``start:stop`` with the current model, then feed window and drift.

        Records the detector refuses go to the dead letters instead of the output (their
        batch indices to ``refused``).
        """
        assert self.encoder is not None
        seg = batch.X[start:stop]
        records, metas = batch.records[start:stop], batch.metadata[start:stop]
        line_numbers = batch.line_numbers[start:stop]
        score = self.model.score_learning if self.learning else self.model.score
        scores, rejected = self._scores_of(seg, score)
        if rejected:
            self._handle_rejected([batch.rejected(start + j, error) for j, error in sorted(rejected.items())])
            refused += [start + j for j in sorted(rejected)]
            keep = [j for j in range(stop - start) if j not in rejected]
            seg, scores = seg[keep], scores[keep]
            records = [records[j] for j in keep]
            metas = [metas[j] for j in keep]
            line_numbers = [line_numbers[j] for j in keep]
            if not keep:
                return []
        n = len(records)
        p_values: np.ndarray | None = None
        if self._threshold is not None:
            label_array, thresholds, p_values = self._threshold.labels_and_p_values(scores)
            flags = label_array.astype(bool)
        else:
            threshold = float(self.model.threshold or 0.0)
            detector = self.model.detector
            flags = detector.label_scores(scores).astype(bool) if self._fdr else scores > threshold
            if self.p_values:
                p_values = detector.p_values_of_scores(scores)
            thresholds = None
        labels = flags.astype(np.int64).tolist()
        finite = np.isfinite(scores)
        score_list = scores.tolist() if finite.all() else [jsonio.finite_or_none(s) for s in scores.tolist()]
        label = self.model.label
        p_list = None
        if self.p_values and p_values is not None:
            p_list = [None if p != p else p for p in p_values.tolist()]  # NaN (not settled): null
        out = self.encoder.encode(records, metas, score_list, labels, model=label, p_values=p_list)
        n_anom = int(flags.sum())
        counts["scored"] += n
        counts["anomalies"] += n_anom
        self.stats.scored += n
        self.stats.anomalies += n_anom
        base = self.offset
        gated = not self._alerts.trivial and self.events.wants(AnomalyDetected.type)
        if gated or (n_anom and self.events.wants(AnomalyDetected.type)):
            found: list[Event] = []
            for j in np.flatnonzero(flags).tolist():
                rec = records[j]
                found.append(
                    AnomalyDetected(
                        stream=self.stream_id,
                        offset=base + j,
                        line_number=line_numbers[j],
                        score=float(scores[j]),
                        threshold=threshold if thresholds is None else float(thresholds[j]),
                        model=label,
                        record_id=rec.get("id") if hasattr(rec, "get") else None,  # dict or typed
                        metadata=_plain(metas[j]),
                    )
                )
            if gated:  # K of the last N records of a key, then suppression: the alerts only
                keys = None if self._alert_key is None else [_field(r, self._alert_key) for r in records]
                found = self._alerts.observe(keys, flags.tolist(), found)
            self._pending += found
        self.window.extend(seg)
        self._since_fit += n
        self.offset += n
        if self._drift is not None:
            values = seg if self.config.drift_on == "features" else scores[finite]
            self._check_drift(values, base)
        return out

    def _scores_of(
        self, X: np.ndarray, score: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Scores of ``X``, and the rows the detector refused (a ``DataError``) with the reason.

        One vectorised call when all goes well. When the detector refuses the segment, the
        rows it refuses are found by halving (a few calls per bad record, not one per row),
        so one bad record never costs its neighbours their scores. The halves are scored in
        order, so an online detector's test-then-train scores stay in stream order (it learns
        the rows it accepts, once each, provided a refusal leaves it unchanged).
        """
        try:
            return score(X), {}
        except DataError as exc:
            refused = exc
        scores = np.zeros(len(X), dtype=np.float64)
        rejected: dict[int, str] = {}
        if len(X) == 1:
            rejected[0] = _one_line(refused)
        else:
            half = len(X) // 2
            self._isolate(score, X, 0, half, scores, rejected)
            self._isolate(score, X, half, len(X), scores, rejected)
        return scores, rejected

    def _isolate(
        self,
        score: Callable[[np.ndarray], np.ndarray],
        X: np.ndarray,
        lo: int,
        hi: int,
        scores: np.ndarray,
        rejected: dict[int, str],
    ) -> None:
        """Score rows ``lo:hi`` into ``scores``; rows refused on their own go to ``rejected``."""
        try:
            scores[lo:hi] = score(X[lo:hi])
            return
        except DataError as exc:
            if hi - lo == 1:
                rejected[lo] = _one_line(exc)
                return
        mid = (lo + hi) // 2
        self._isolate(score, X, lo, mid, scores, rejected)
        self._isolate(score, X, mid, hi, scores, rejected)

    # ---------------------------------------------------------- drift, refit
    def _check_drift(self, values: np.ndarray, base: int) -> None:
        fed_before = self._drift_fed
        signals = self._drift.update(values)
        self._drift_fed += len(values)
        if not signals:
            return
        retrain = self.policy.mode == "on-drift"
        enough = len(self.window) >= min(self.fit_size, self.window.size)
        action = ("retrain" if enough else "skipped") if retrain else "none"
        first = None
        for signal in signals:
            self.stats.drifts += 1
            self._emit(
                DriftDetected(
                    stream=self.stream_id,
                    detector=signal.detector,
                    on=self.config.drift_on,
                    offset=base + (signal.index - fed_before),
                    statistic=jsonio.finite_or_none(float(signal.statistic)),
                    threshold=jsonio.finite_or_none(float(signal.threshold)),
                    p_value=signal.p_value,
                    feature=signal.feature,
                    action=action,
                )
            )
            at = base + (signal.index - fed_before)
            first = at if first is None else min(first, at)
        if retrain and enough:
            # The records since the drift (at least a first fit's worth), not the whole window:
            # most of a window still holds the records before the change.
            drift_at = int(first if first is not None else self.offset)
            since = max(self.offset - drift_at, self._drift_refit_size())
            self._refit("drift", self._young_rows(max(0, self.offset - since)))

    def _drift_refit_size(self) -> int:
        """The fewest records a refit after a drift uses.

        A window detector starts small and grows (a warm-up's worth, then x2...); an online
        detector is not refitted again as records come, so it starts from the records the
        drift test itself found different (half its window), or a warm-up's worth.
        """
        if self.learning:
            return max(self.fit_size, self._drift_every)
        return self.fit_size

    def _refit(self, reason: str, X: np.ndarray) -> None:
        """Fit on the window; a refit that fails with a typed error keeps the previous model.

        Such a failure (a window the detector refuses, a store that cannot save) is reported
        and published as ``model.refit_failed``. A failing *initial* fit propagates: with no
        model at all there is nothing to fall back on, and the cause needs fixing. Any
        other exception is a bug and propagates too.
        """
        previous_label, previous_threshold = self.model.label, self.threshold
        self._since_fit = 0
        try:
            fit_ms, saved = self.model.refit(X, self.decoder.features)
        except AdcoreError as exc:
            if reason == "initial":
                error = self.model.first_fit_error(exc, int(X.shape[0]))
                if error is not None:
                    raise error from exc
                raise
            self._refit_failed(reason, X, previous_label, exc)
            return
        self.stats.retrains += 1
        if self._threshold is not None:
            self._threshold.reset(getattr(self.model.detector, "decision_scores_", None))
        if self._drift is not None:
            self._drift.reset(X if self.config.drift_on == "features" else None)
        self._emit(
            ModelRetrained(
                stream=self.stream_id,
                reason=reason,
                offset=self.offset,
                n_samples=int(X.shape[0]),
                algorithm=self.model.algorithm,
                threshold=float(self.threshold or 0.0),
                previous_threshold=previous_threshold,
                model=self.model.label,
                previous_model=previous_label,
                saved=saved,
                fit_ms=round(fit_ms, 3),
                seed=self.model.seed,
            )
        )
        if saved and self.events.wants(ModelSaved.type):
            self._emit(ModelSaved.from_record(self.model.last_saved, stream=self.stream_id))

    def _refit_failed(self, reason: str, X: np.ndarray, kept: str | None, exc: AdcoreError) -> None:
        message = _one_line(exc)
        self.stats.refit_failures += 1
        where = f"{reason} refit at record {self.offset}"
        self.report(f"{where} failed, keeping {kept or 'the model'}: {message}")
        self._emit(
            RefitFailed(
                stream=self.stream_id,
                reason=reason,
                offset=self.offset,
                n_samples=int(X.shape[0]),
                algorithm=self.model.algorithm,
                model=kept,
                error=message,
                error_type=type(exc).__name__,
                parameter=exc.parameter,
            )
        )

    # ------------------------------------------------------------- delivery
    def _release_held_alerts(self) -> None:
        """Publish the alerts ``--suppress`` still holds back (the stream ended or stops)."""
        held = self._alerts.close()
        if held and self.events.wants(AnomalyDetected.type):
            for event in held:
                self.events.publish(event)
            self.events.flush()

    def _emit(self, event: Event) -> None:
        if self.events.wants(event.type):
            self._pending.append(event)

    def _publish_pending(self) -> None:
        pending, self._pending = self._pending, []
        for event in pending:
            self.events.publish(event)
        self.events.flush()

    def _handle_malformed(self, malformed: list[Malformed]) -> None:
        if not malformed:
            return
        self.stats.malformed += len(malformed)
        self._dead_letters(malformed)

    def _handle_rejected(self, rejected: list[Malformed]) -> None:
        self.stats.rejected += len(rejected)
        self._dead_letters(rejected)

    def _dead_letters(self, malformed: list[Malformed]) -> None:
        """To the dead-letter sink, else one line each through ``report``."""
        if self.dead_letter is not None:
            write_malformed = getattr(self.dead_letter, "write_malformed", None)  # keeps the raw bytes
            for item in malformed:
                if write_malformed is not None:
                    write_malformed(item)
                else:
                    self.dead_letter.write(jsonio.dumps(item.to_dict()), item.metadata)
        else:
            for item in malformed:
                self.report(f"skipped line {item.line_number}: {item.error}")

    def close(self) -> None:
        """Close every endpoint this service was given (sink errors propagate).

        Alerts the ``--suppress`` rule still holds back are published first.
        """
        with contextlib.suppress(Exception):  # closing must go on; the bus reports its own errors
            self._release_held_alerts()
        try:
            self.sink.close()
        finally:
            try:
                if self.dead_letter is not None:
                    self.dead_letter.close()
            finally:
                try:
                    self.events.close()
                finally:
                    self.source.close()
