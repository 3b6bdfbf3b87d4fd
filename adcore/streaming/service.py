"""The streaming service: score records as they arrive, watch for drift, retrain.

Per micro-batch (see :mod:`adcore.streaming.batching`):

1. decode the lines (:class:`~adcore.streaming.records.RecordDecoder`); malformed ones go to
   the dead-letter sink or one line each on stderr, never stopping the stream;
2. walk the valid records in *segments* so that per-record semantics do not depend on the
   batch size: warm-up records (before the first fit) are emitted with ``warmup: true`` and
   a null score; ``--retrain every:N`` splits the batch exactly at every N-th record, so the
   records after a refit are scored by the new model; each scored segment feeds the drift
   detector, and a drift with ``--retrain on-drift`` refits at the end of that segment;
3. write one output line per valid record, in order, and ``sink.flush()``;
4. publish the batch's events (``detection.completed`` last), flush the event sinks, and
   only then ``source.commit()``: everything a batch caused is delivered before its input
   is acknowledged (at-least-once).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from adcore import jsonio
from adcore.errors import SchemaMismatchError
from adcore.events import (
    AnomalyDetected,
    DetectionCompleted,
    DriftDetected,
    Event,
    EventBus,
    ModelRetrained,
)
from adcore.messaging import Item, Sink, Source
from adcore.streaming.batching import MicroBatcher
from adcore.streaming.config import StreamConfig
from adcore.streaming.model import StreamModel
from adcore.streaming.records import DecodedBatch, Malformed, OutputEncoder, RecordDecoder
from adcore.streaming.windows import make_window


@dataclass
class StreamStats:
    """Counts for one run (what the CLI summarises on stderr)."""

    lines: int = 0
    records: int = 0
    scored: int = 0
    warmup: int = 0
    malformed: int = 0
    anomalies: int = 0
    drifts: int = 0
    retrains: int = 0
    batches: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stderr(message: str) -> None:
    import sys

    sys.stderr.write(message + "\n")
    sys.stderr.flush()


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
        self.decoder = RecordDecoder(features, n_features=None if features else model.n_features)
        self.encoder: OutputEncoder | None = None
        self.window = make_window(config.window_type, config.window)
        self.warmup = int(config.warmup or config.window)
        self.offset = 0  # valid records so far = offset of the next output record
        self._since_fit = 0
        self._drift: Any = None
        self._drift_fed = 0
        self._pending: list[Event] = []
        if config.drift != "none":
            self._drift = self._make_drift(features)  # now, so a bad --drift-param fails before any read

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
                    self.process(items)
                if batcher.ended or self._stop.is_set():
                    break
        finally:
            self.stats.seconds = time.perf_counter() - started
        return self.stats

    # -------------------------------------------------------------- one batch
    def process(self, items: list[Item]) -> None:
        """Decode, score, write and acknowledge one micro-batch (public for embedding/tests)."""
        started = time.perf_counter()
        batch = self.decoder.decode(items)
        self.stats.lines += len(items)
        self.stats.batches += 1
        self._handle_malformed(batch.malformed)
        if self.encoder is None and self.decoder.features is not None:
            self._on_features_known(self.decoder.features)
        first = self.offset
        counts = {"scored": 0, "warmup": 0, "anomalies": 0}
        lines = self._score_segments(batch, counts) if len(batch) else []
        self._write_many(lines, batch.metadata)
        self.sink.flush()
        if self.dead_letter is not None and batch.malformed:
            self.dead_letter.flush()
        self.stats.records += len(batch)
        if self.events.wants(DetectionCompleted.type):
            n = len(batch)
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
                    threshold=self.model.threshold,
                    duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
                )
            )
        self._publish_pending()
        self.source.commit()

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
        self.encoder = OutputEncoder(features, keep_features=self.config.keep_features)
        if self._drift is not None and inferred:
            self._drift = self._make_drift(features)  # now the drifted feature can be named

    def _make_drift(self, features: list[str] | None) -> Any:
        from adcore.drift import create_drift_detector

        names = list(features) if features and self.config.drift_on == "features" else None
        return create_drift_detector(self.config.drift, feature_names=names, **dict(self.config.drift_params))

    def _score_segments(self, batch: DecodedBatch, counts: dict[str, int]) -> list[bytes]:
        assert self.encoder is not None
        X, records, metas = batch.X, batch.records, batch.metadata
        n = len(records)
        out: list[bytes] = []
        i = 0
        while i < n:
            if not self.model.fitted:
                k = min(n - i, max(self.warmup - self.window.n_seen, 1))
                out += self.encoder.encode(records[i : i + k], metas[i : i + k], None, None, model=None)
                self.window.extend(X[i : i + k])
                counts["warmup"] += k
                self.stats.warmup += k
                i += k
                self.offset += k
                if self.window.n_seen >= self.warmup:
                    self._refit("initial")
                continue
            k = n - i
            if self.policy.mode == "every":
                k = min(k, int(self.policy.every or 1) - self._since_fit)
            out += self._score(batch, i, i + k, counts)
            i += k
            if self.policy.mode == "every" and self._since_fit >= int(self.policy.every or 1):
                self._refit("periodic")
        return out

    def _score(self, batch: DecodedBatch, start: int, stop: int, counts: dict[str, int]) -> list[bytes]:
        """Score records ``start:stop`` with the current model, then feed window and drift."""
        assert self.encoder is not None
        seg = batch.X[start:stop]
        scores = self.model.score(seg)
        threshold = float(self.model.threshold or 0.0)
        flags = scores > threshold
        labels = flags.astype(np.int64).tolist()
        finite = np.isfinite(scores)
        score_list = scores.tolist() if finite.all() else [jsonio.finite_or_none(s) for s in scores.tolist()]
        label = self.model.label
        out = self.encoder.encode(
            batch.records[start:stop], batch.metadata[start:stop], score_list, labels, model=label
        )
        n_anom = int(flags.sum())
        counts["scored"] += stop - start
        counts["anomalies"] += n_anom
        self.stats.scored += stop - start
        self.stats.anomalies += n_anom
        base = self.offset
        if n_anom and self.events.wants(AnomalyDetected.type):
            for j in np.flatnonzero(flags).tolist():
                rec = batch.records[start + j]
                self._pending.append(
                    AnomalyDetected(
                        stream=self.stream_id,
                        offset=base + j,
                        line_number=batch.line_numbers[start + j],
                        score=float(scores[j]),
                        threshold=threshold,
                        model=label,
                        record_id=rec.get("id") if hasattr(rec, "get") else None,  # dict or typed
                        metadata=_plain(batch.metadata[start + j]),
                    )
                )
        self.window.extend(seg)
        self._since_fit += stop - start
        self.offset += stop - start
        if self._drift is not None:
            values = seg if self.config.drift_on == "features" else scores[finite]
            self._check_drift(values, base)
        return out

    # ---------------------------------------------------------- drift, refit
    def _check_drift(self, values: np.ndarray, base: int) -> None:
        fed_before = self._drift_fed
        signals = self._drift.update(values)
        self._drift_fed += len(values)
        if not signals:
            return
        retrain = self.policy.mode == "on-drift"
        enough = len(self.window) >= min(self.warmup, self.window.size)
        action = ("retrain" if enough else "skipped") if retrain else "none"
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
        if retrain and enough:
            self._refit("drift")

    def _refit(self, reason: str) -> None:
        """Fit on the window; a failed *re*fit is reported and the previous model kept.

        A failing initial fit propagates: with no model at all there is nothing to fall
        back on, and the cause (detector, parameters, store) needs fixing.
        """
        X = self.window.contents()
        previous_label, previous_threshold = self.model.label, self.model.threshold
        self._since_fit = 0
        try:
            fit_ms, saved = self.model.refit(X, self.decoder.features)
        except Exception as exc:
            if reason == "initial":
                raise
            self.report(
                f"{reason} refit at record {self.offset} failed, keeping {previous_label or 'the model'}: "
                f"{type(exc).__name__}: {exc}"
            )
            return
        self.stats.retrains += 1
        if self._drift is not None:
            self._drift.reset(X if self.config.drift_on == "features" else None)
        self._emit(
            ModelRetrained(
                stream=self.stream_id,
                reason=reason,
                offset=self.offset,
                n_samples=int(X.shape[0]),
                algorithm=self.model.algorithm,
                threshold=float(self.model.threshold or 0.0),
                previous_threshold=previous_threshold,
                model=self.model.label,
                previous_model=previous_label,
                saved=saved,
                fit_ms=round(fit_ms, 3),
            )
        )

    # ------------------------------------------------------------- delivery
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
        """Close every endpoint this service was given (sink errors propagate)."""
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
