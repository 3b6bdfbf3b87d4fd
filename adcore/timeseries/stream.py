"""Many series in one stream: ``adcore stream --algo ts:NAME --series FIELD``.

A metrics stream interleaves thousands of series (one per host, service, queue...). Each
series gets its own causal time-series detector (:mod:`adcore.timeseries.detectors`),
created when the series' first record arrives; its first ``warmup`` values are emitted as
warm-up records (``warmup: true``, null score) and then fit it; every later value is
scored with ``update_score``, test-then-train, in arrival order. A series' scores
therefore depend on that series' records only, and equal what the detector gives on the
series alone: the batch size, and the other series, change nothing.

Policies (docs/streaming.md, "Many series"):

- a record without the series field (or with a null, object or array key), without the
  value field, with a non-finite value, or (with ``--time``) with a missing or unreadable
  timestamp goes to the dead letters; the stream goes on;
- out-of-order records: with ``--time``, a record whose timestamp is *earlier* than the
  last one accepted for its series is dead-lettered (scoring it would put it after a
  later point); equal timestamps are accepted, in arrival order;
- memory: per series, the detector's fixed-size buffers (``state_nbytes``) plus the
  warm-up values until the fit. ``max_series`` bounds the number of live series: beyond it
  the least recently seen series is dropped (reported once, counted in ``evicted``) and
  warms up again if it returns;
- a stored model (``adcore fit --algo ts:NAME --time ... --model NAME``,
  :mod:`adcore.timeseries.models`): a series it holds resumes from its stored state with
  no warm-up (counted in ``resumed``), and with ``--time`` a record before the end of that
  series' history is dead-lettered as out of order; any other series warms up on arrival;
- drift (``--drift ks|psi|adwin|page-hinkley``): each fitted series gets its own drift
  detector on its raw values (the windowed tests take the warm-up as their reference); a
  signal is a ``drift.detected`` event with the series key, and with ``--retrain on-drift``
  that series' detector is refitted on its last ``warmup`` values (kept in a ring of that
  size per series, the extra memory ``on-drift`` costs), the others untouched.

The decoding, the output lines, the dead letters and the events are the tabular stream's
own (:mod:`adcore.services.streaming`); only the scoring differs.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from adcore.domain.events import AnomalyDetected, DetectionCompleted, DriftDetected, Event, EventBus
from adcore.errors import AdcoreError, DataError, ParameterError
from adcore.io import jsonio
from adcore.messaging import Item, Sink, Source
from adcore.services.streaming.alert_rule import AlertRule
from adcore.services.streaming.batching import MicroBatcher
from adcore.services.streaming.config import DEFAULT_MAX_RECORD_BYTES
from adcore.services.streaming.records import DecodedBatch, Malformed, OutputEncoder, RecordDecoder

#: Warm-up of a detector that says nothing better: the anomaly likelihood's first block
#: (its scores are 0 until one block of raw scores is in), so scoring starts right after.
DEFAULT_WARMUP = 100
_LIKELIHOOD_BLOCK = 100


def default_warmup(name: str, params: Mapping[str, Any] | None = None, detector: Any = None) -> int:
    """The fewest values a series is fitted on before its first score, for detector ``name``.

    A detector's own ``min_warmup`` attribute wins when it has one. Otherwise: one block of
    the anomaly likelihood (``likelihood.block``, 100) for the detectors that end in it, and
    at least one window more than a ``sub-<detector>``'s windows; ``extreme`` needs a range
    of earlier values to mean anything, so it gets the same 100.
    """
    own = getattr(detector, "min_warmup", None)
    if isinstance(own, int) and own >= 1:
        return own
    params = dict(params or {})
    key = name.removeprefix("ts:")
    block = int(params.get("likelihood.block", _LIKELIHOOD_BLOCK))
    warmup = max(DEFAULT_WARMUP if key == "extreme" else block, 2)
    if key.startswith("sub-"):
        need = int(params.get("length", 16)) + int(bool(params.get("diff", False)))
        warmup = max(warmup, need + 2)
    return warmup


def check_drift_options(
    drift: str | None, params: Mapping[str, Any] | None, retrain: str | None
) -> tuple[str, dict[str, Any], str]:
    """``--drift``, ``--drift-param`` and ``--retrain`` of a many-series stream, checked:
    a drift detector by name (built once, so a bad parameter fails now); ``never`` or
    ``on-drift`` (a series refits on its own drift only, not on a schedule)."""
    name, options, policy = drift or "none", dict(params or {}), retrain or "never"
    if policy not in ("never", "on-drift"):
        raise ParameterError(f"--retrain with --series is never or on-drift, not {retrain!r}")
    if name != "none":
        from adcore.domain.drift import create_drift_detector

        create_drift_detector(name, **dict(options))
    elif policy == "on-drift" or options:
        raise ParameterError("--retrain on-drift and --drift-param need --drift ks|psi|adwin|page-hinkley")
    return name, options, policy


def parse_label_threshold(text: str | float | None) -> float:
    """``--threshold`` for a time-series stream: a number (or ``fixed:NUMBER``) in ``[0, 1]``."""
    from adcore.timeseries.detectors import DEFAULT_THRESHOLD

    if text is None:
        return float(DEFAULT_THRESHOLD)
    raw = str(text).removeprefix("fixed:")
    try:
        value = float(raw)
    except ValueError:
        raise ParameterError(
            f"--threshold {text} is not a number: a time-series detector's scores are in [0, 1], "
            "give one such as 0.5 (or fixed:0.5)"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ParameterError(f"--threshold {text} is outside [0, 1], where time-series scores lie")
    return value


def epoch_seconds(value: Any) -> float:
    """A timestamp as seconds since the epoch: an epoch number or ISO 8601 text.

    As ``adcore run --time`` reads them (:func:`adcore.timeseries.run.parse_times`): an
    epoch number above 1e11 is in milliseconds, text without a zone is UTC. Raises
    ``ValueError`` naming what is wrong.
    """
    number: float | None = None
    if type(value) in (int, float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        with contextlib.suppress(ValueError):
            number = float(text)
    if number is not None:
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number / 1000.0 if abs(number) > 1e11 else number
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is neither ISO 8601 nor epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise ValueError(f"{jsonio.dumps(value).decode('utf-8')[:40]} is not a timestamp")


@dataclass
class SeriesStreamStats:
    """Counts for one run; ``series`` are live now, ``series_seen`` ever created."""

    lines: int = 0
    records: int = 0
    scored: int = 0
    warmup: int = 0
    malformed: int = 0
    rejected: int = 0
    anomalies: int = 0
    series: int = 0
    series_seen: int = 0
    evicted: int = 0
    resumed: int = 0
    drifts: int = 0
    retrains: int = 0
    fit_failures: int = 0
    batches: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Series:
    """One series' state: its detector, and its warm-up values until the fit."""

    __slots__ = ("detector", "drift", "last_time", "recent", "times", "values")

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.values: array[float] | None = array("d")  # None once fitted; 8 bytes a value
        self.times: array[float] | None = None
        self.last_time = -math.inf
        self.drift: Any = None  # a drift detector on the raw values, with --drift
        self.recent: Any = None  # a Ring of the last warm-up's worth of values, with on-drift


_KEY_TYPES = (str, int, float, bool)


class SeriesStreamService:
    """Scores a stream of many series, one detector each; see the module docstring."""

    def __init__(
        self,
        source: Source,
        sink: Sink,
        *,
        algo: str,
        params: Mapping[str, Any] | None = None,
        series: str | None,
        time_field: str | None = None,
        value: str = "value",
        warmup: int | None = None,
        threshold: float | None = None,
        max_series: int | None = None,
        keep_features: bool = False,
        batch_size: int = 1000,
        max_delay_ms: float = 200.0,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        min_anomalies: int = 1,
        within: int = 1,
        suppress: int = 0,
        events: EventBus | None = None,
        dead_letter: Sink | None = None,
        report: Callable[[str], None] | None = None,
        stream_id: str | None = None,
        model: Any = None,
        drift: str = "none",
        drift_params: Mapping[str, Any] | None = None,
        retrain: str | None = None,
    ) -> None:
        from adcore.timeseries.detectors import DEFAULT_THRESHOLD, build_ts_detector

        self.stored = model  # a TimeSeriesModel: its series resume from their stored state
        if model is not None:
            algo, params = model.algorithm, model.params
        self.algo = "ts:" + algo.removeprefix("ts:")
        self.params = dict(params or {})
        self._build = lambda: build_ts_detector(self.algo, **self.params)
        probe = self._build()  # a bad name or parameter fails here, before a record is read
        if batch_size < 1:
            raise ParameterError(f"--batch-size must be at least 1, not {batch_size}")
        if max_delay_ms < 0:
            raise ParameterError(f"--max-delay-ms must be at least 0, not {max_delay_ms}")
        if max_series is not None and max_series < 1:
            raise ParameterError(f"--max-series must be at least 1, not {max_series}")
        if warmup is not None and warmup < 1:
            raise ParameterError(f"--warmup must be at least 1 for a time-series detector, not {warmup}")
        if not value:
            raise ParameterError("--value must name the field holding each point's value")
        self.warmup = int(warmup) if warmup is not None else default_warmup(self.algo, self.params, probe)
        self._check_fit(probe)
        self.drift, self.drift_params, self.retrain = check_drift_options(drift, drift_params, retrain)
        self._drift_found: list[tuple[int, Any, Any, str]] = []  # (record, series, signal, action)
        self.threshold = float(DEFAULT_THRESHOLD if threshold is None else threshold)
        self.source, self.sink = source, sink
        self.series_field, self.time_field, self.value_field = series, time_field, value
        self.max_series = max_series
        self.batch_size, self.max_delay_ms = int(batch_size), float(max_delay_ms)
        self.events = events or EventBus()
        self.dead_letter = dead_letter if dead_letter is not None else getattr(source, "dead_letter", None)
        self.report = report or _stderr
        self.stream_id = stream_id or str(uuid.uuid4())
        self.stats = SeriesStreamStats()
        self.decoder = RecordDecoder([value], max_record_bytes=max_record_bytes)
        self.encoder = OutputEncoder([value], keep_features=keep_features)
        self._series: dict[Any, _Series] = OrderedDict() if max_series is not None else {}
        self._alerts = AlertRule(min_anomalies, within, suppress)
        self._offset = 0
        self._stop = threading.Event()
        self._eviction_reported = False

    def _check_fit(self, probe: Any) -> None:
        """Fit a throwaway detector on ``warmup`` synthetic values: a warm-up too short for it
        is a one-line error now, not a failure once thousands of series are warming up."""
        rng = np.random.default_rng(0)
        try:
            probe.fit(np.sin(np.arange(self.warmup) / 5.0) + 0.1 * rng.standard_normal(self.warmup))
        except (DataError, ValueError) as exc:  # ValueError: numpy's, from a window longer than the data
            raise ParameterError(f"--warmup {self.warmup} is too short for {self.algo}: {exc}") from None

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Finish and flush the current micro-batch, then return from :meth:`run`."""
        self._stop.set()

    def run(self) -> SeriesStreamStats:
        """Process micro-batches until the source ends or :meth:`stop`; returns the counts."""
        started = time.perf_counter()
        batcher = MicroBatcher(
            self.source, batch_size=self.batch_size, max_delay=self.max_delay_ms / 1000.0, stop=self._stop
        )
        retain = getattr(self.source, "retain", None)  # a Kafka rebalance may take partitions away
        try:
            while True:
                items = batcher.next_batch()
                if items and retain is not None:
                    items = retain(items)
                if items:
                    self.process(items)
                if batcher.ended or self._stop.is_set():
                    break
            self._publish(self._alerts.close())
        finally:
            self.stats.seconds = time.perf_counter() - started
        return self.stats

    def state_nbytes(self) -> int:
        """Bytes of detector state over all live series (what ``max_series`` bounds)."""
        return sum(s.detector.state_nbytes() for s in self._series.values())

    def series_keys(self) -> list[Any]:
        return list(self._series)

    # -------------------------------------------------------------- one batch
    def process(self, items: list[Item]) -> None:
        """Decode, score, write, then publish events and acknowledge one micro-batch."""
        started = time.perf_counter()
        batch = self.decoder.decode(items)
        self.stats.lines += len(items)
        self.stats.batches += 1
        if batch.malformed:
            self.stats.malformed += len(batch.malformed)
            self._dead_letters(batch.malformed)
        first = self._offset
        scores, keys, refused = self._score(batch)
        lines, metadata, flags = self._encode(batch, scores)
        try:
            self._write(lines, metadata)
        except BrokenPipeError:
            raise  # the reader left on purpose (| head)
        except BaseException as exc:  # a full disk: the records can still reach the dead letters
            self._keep_unwritten(batch, scores, exc)
            raise
        if refused:
            self.stats.rejected += len(refused)
            self._dead_letters(refused)
        if self.dead_letter is not None and (batch.malformed or refused):
            self.dead_letter.flush()
        n = len(lines)
        n_scored = sum(s is not None for s in scores) - len(refused)  # refused: NaN slots
        n_anom = len(flags)
        self.stats.records += n
        self.stats.scored += n_scored
        self.stats.warmup += n - n_scored
        self.stats.anomalies += n_anom
        self._offset += n
        pending = self._anomaly_events(batch, scores, keys, flags, first)
        pending.extend(self._drift_events(scores, first))
        if self.events.wants(DetectionCompleted.type):
            pending.append(
                DetectionCompleted(
                    stream=self.stream_id,
                    records=n,
                    scored=n_scored,
                    warmup=n - n_scored,
                    anomalies=n_anom,
                    malformed=len(batch.malformed),
                    first_offset=first if n else None,
                    last_offset=first + n - 1 if n else None,
                    model=self.algo,
                    threshold=self.threshold,
                    duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
                    rejected=len(refused),
                )
            )
        self._publish(pending)
        self.source.commit()

    def _score(self, batch: DecodedBatch) -> tuple[list[float | None], list[Any], list[Malformed]]:
        """Per record: its score (``None`` for warm-up), its series key; the refused records.

        A refused record's score slot holds ``math.nan`` (it is not written).
        """
        n = len(batch)
        scores: list[float | None] = [None] * n
        keys: list[Any] = [None] * n
        refused: list[Malformed] = []
        if not n:
            return scores, keys, refused
        values = batch.X[:, 0].tolist()
        records = batch.records
        sfield, tfield = self.series_field, self.time_field
        table = self._series
        lru = self.max_series is not None
        for i in range(n):
            rec = records[i]
            key = None
            if sfield is not None:
                key = rec.get(sfield) if type(rec) is not list else None
                if key is None or not isinstance(key, _KEY_TYPES):
                    refused.append(batch.rejected(i, self._bad_key(rec, key)))
                    scores[i] = math.nan
                    continue
            keys[i] = key
            t: float | None = None
            if tfield is not None:
                raw = rec.get(tfield) if type(rec) is not list else None
                try:
                    if raw is None:
                        raise ValueError(f"missing time field {tfield!r}")
                    t = epoch_seconds(raw)
                except ValueError as exc:
                    refused.append(batch.rejected(i, f"time field {tfield!r}: {exc}"))
                    scores[i] = math.nan
                    continue
            state = table.get(key)
            if state is None:
                state = self._new_series(key)
            elif lru:
                table.move_to_end(key)  # type: ignore[attr-defined]
            if t is not None:
                if t < state.last_time:
                    error = (
                        f"out of order: time {_iso(t)} is before the series' last accepted time "
                        f"{_iso(state.last_time)} (records of a series must arrive in time order)"
                    )
                    refused.append(batch.rejected(i, error))
                    scores[i] = math.nan
                    continue
                state.last_time = t
            v = values[i]
            if state.values is None:
                try:
                    s = state.detector.update_score(v, t)
                except DataError as exc:
                    refused.append(batch.rejected(i, f"{self.algo}: {exc}"))
                    scores[i] = math.nan
                    continue
                scores[i] = s if math.isfinite(s) else 0.0
                if state.drift is not None:
                    self._watch(state, key, v, i)
            else:
                self._warm(state, key, v, t)
        return scores, keys, refused

    # ------------------------------------------------------------------ drift
    def _start_drift(self, state: _Series, reference: np.ndarray | None) -> None:
        """A fitted series' drift detector (and ring of recent values for ``on-drift``)."""
        if self.drift == "none":
            return
        from adcore.domain.drift import create_drift_detector
        from adcore.timeseries.detectors.base import Ring

        state.drift = create_drift_detector(self.drift, **self.drift_params)
        if reference is not None and reference.size >= 2:
            state.drift.reset(reference)
        if self.retrain == "on-drift":
            state.recent = Ring(self.warmup)
            if reference is not None:
                state.recent.extend(reference)

    def _watch(self, state: _Series, key: Any, v: float, i: int) -> None:
        """Feed one scored value to the series' drift detector; on a signal, maybe refit."""
        if state.recent is not None:
            state.recent.push(v)
        signals = state.drift.update(np.array([v]))
        if not signals:
            return
        self.stats.drifts += len(signals)
        action = "none"
        if state.recent is not None:
            action = "skipped"
            if state.recent.count >= self.warmup:
                recent = state.recent.view().copy()
                detector = self._build()
                try:
                    detector.fit(recent)
                except AdcoreError as exc:
                    self.report(
                        f"series {key!r}: the refit after drift failed ({_one_line(exc)}); kept the model"
                    )
                else:
                    state.detector = detector
                    state.drift.reset(recent)
                    self.stats.retrains += 1
                    action = "retrain"
        self._drift_found.extend((i, key, signal, action) for signal in signals)

    def _drift_events(self, scores: list[float | None], first: int) -> list[Event]:
        """``drift.detected`` per signal of this batch, at the offset of the record that fired it."""
        found, self._drift_found = self._drift_found, []
        if not found or not self.events.wants(DriftDetected.type):
            return []
        written = [i for i, s in enumerate(scores) if s is None or s == s]
        offset_of = {i: first + k for k, i in enumerate(written)}
        return [
            DriftDetected(
                stream=self.stream_id,
                detector=signal.detector,
                on="values",
                offset=offset_of[i],
                statistic=_finite(signal.statistic),
                threshold=_finite(signal.threshold),
                p_value=None if signal.p_value is None else _finite(signal.p_value),
                action=action,
                series=key,
            )
            for i, key, signal, action in found
        ]

    def _warm(self, state: _Series, key: Any, v: float, t: float | None) -> None:
        """Keep a warm-up value; the ``warmup``-th fits the series' detector."""
        assert state.values is not None
        state.values.append(v)
        if t is not None:
            if state.times is None:
                state.times = array("d")
            state.times.append(t)
        if len(state.values) < self.warmup:
            return
        x = np.frombuffer(state.values, dtype=np.float64).copy()
        times = None if state.times is None else np.frombuffer(state.times, dtype=np.float64).copy()
        try:
            state.detector.fit(x, times)
        except AdcoreError as exc:
            self.stats.fit_failures += 1
            self.report(f"series {key!r}: the warm-up fit failed ({_one_line(exc)}); it warms up again")
            state.detector = self._build()
            state.values, state.times = array("d"), None
            return
        state.values, state.times = None, None
        self._start_drift(state, x)

    def _new_series(self, key: Any) -> _Series:
        table = self._series
        if self.max_series is not None and len(table) >= self.max_series:
            old, _ = table.popitem(last=False)  # type: ignore[call-arg]
            self.stats.evicted += 1
            if not self._eviction_reported:
                self._eviction_reported = True
                self.report(
                    f"--max-series {self.max_series} reached: the least recently seen series "
                    f"({old!r} first) are dropped and warm up again if they return; see the evicted count"
                )
        detector = self.stored.take(key) if self.stored is not None else None
        if detector is None:
            state = _Series(self._build())
        else:  # fitted on the series' history: no warm-up, and no record from before its end
            state = _Series(detector[0])
            state.values = None
            if self.time_field is not None and detector[1] is not None:
                state.last_time = detector[1] / 1e9
            self._start_drift(state, None)  # no history kept: the first window is the reference
            self.stats.resumed += 1
        table[key] = state
        self.stats.series_seen += 1
        self.stats.series = len(table)
        return state

    def _bad_key(self, rec: Any, key: Any) -> str:
        field_name = self.series_field
        if type(rec) is list:
            return f"an array record has no series field {field_name!r}: send JSON objects"
        if key is None:
            layout = getattr(type(rec), "_layout", None)  # a typed record knows its keys
            present = field_name in (rec if type(rec) is dict else getattr(layout, "attrs", {}))
            return (
                f"series field {field_name!r} is null" if present else f"missing series field {field_name!r}"
            )
        kind = {dict: "an object", list: "an array"}.get(type(key), type(key).__name__)
        return f"series field {field_name!r} must be a string or a number, not {kind}"

    def _encode(
        self, batch: DecodedBatch, scores: list[float | None]
    ) -> tuple[list[bytes], list[Any], list[int]]:
        """Output lines in input order (warm-up and scored records encoded in two groups)."""
        n = len(batch)
        if not n:
            return [], [], []
        warm = [i for i in range(n) if scores[i] is None]
        done = [i for i in range(n) if scores[i] is not None and scores[i] == scores[i]]
        threshold = self.threshold
        labels = [int(scores[i] >= threshold) for i in done]  # type: ignore[operator]
        records, metas = batch.records, batch.metadata
        by_index: dict[int, bytes] = {}
        if warm:
            lines = self.encoder.encode([records[i] for i in warm], [metas[i] for i in warm], None, None)
            by_index.update(zip(warm, lines, strict=True))
        if done:
            lines = self.encoder.encode(
                [records[i] for i in done], [metas[i] for i in done], [scores[i] for i in done], labels
            )
            by_index.update(zip(done, lines, strict=True))
        order = sorted(by_index) if warm and done else (warm or done)
        flags = [i for i, lab in zip(done, labels, strict=True) if lab]
        return [by_index[i] for i in order], [metas[i] for i in order], flags

    def _anomaly_events(
        self, batch: DecodedBatch, scores: list[float | None], keys: list[Any], flags: list[int], first: int
    ) -> list[Event]:
        """``anomaly.detected`` per labelled record (through the alert rule, keyed by series)."""
        wanted = self.events.wants(AnomalyDetected.type)
        if not wanted or (not flags and self._alerts.trivial):
            return []
        written = [i for i, s in enumerate(scores) if s is None or s == s]  # output order
        offset_of = {i: first + k for k, i in enumerate(written)}
        found: list[Event] = []
        for i in flags:
            rec = batch.records[i]
            found.append(
                AnomalyDetected(
                    stream=self.stream_id,
                    offset=offset_of[i],
                    line_number=batch.line_numbers[i],
                    score=float(scores[i]),  # type: ignore[arg-type]
                    threshold=self.threshold,
                    model=self.algo,
                    record_id=rec.get("id") if hasattr(rec, "get") else None,
                    metadata=None if batch.metadata[i] is None else dict(batch.metadata[i]),  # type: ignore[arg-type]
                    series=keys[i],
                )
            )
        if self._alerts.trivial:
            return found
        scored = [i for i in written if scores[i] is not None]
        flagged = set(flags)
        return list(self._alerts.observe([keys[i] for i in scored], [i in flagged for i in scored], found))

    # ------------------------------------------------------------- delivery
    def _write(self, lines: list[bytes], metadata: list[Any]) -> None:
        many = getattr(self.sink, "write_many", None)
        if lines:
            if many is not None:
                many(lines, metadata)
            else:
                for line, meta in zip(lines, metadata, strict=True):
                    self.sink.write(line, meta)
        self.sink.flush()

    def _keep_unwritten(self, batch: DecodedBatch, scores: list[float | None], exc: BaseException) -> None:
        """Before ``exc`` ends the stream: the batch's records to the dead letters (never raises)."""
        reason = f"not written: the stream stopped: {_one_line(exc)}"
        with contextlib.suppress(Exception):
            kept = [i for i, s in enumerate(scores) if s is None or s == s]
            self._dead_letters([batch.rejected(i, reason) for i in kept])
            if self.dead_letter is not None:
                self.dead_letter.flush()

    def _publish(self, events: Iterable[Event]) -> None:
        events = list(events)
        if not events:
            return
        for event in events:
            self.events.publish(event)
        self.events.flush()

    def _dead_letters(self, letters: list[Malformed]) -> None:
        if self.dead_letter is not None:
            write_malformed = getattr(self.dead_letter, "write_malformed", None)
            for item in letters:
                if write_malformed is not None:
                    write_malformed(item)
                else:
                    self.dead_letter.write(jsonio.dumps(item.to_dict()), item.metadata)
        else:
            for item in letters:
                self.report(f"skipped line {item.line_number}: {item.error}")


def _finite(value: float) -> float | None:
    """A statistic for JSON: ``None`` for an infinite or NaN one."""
    return float(value) if math.isfinite(value) else None


def _iso(seconds: float) -> str:
    """Epoch seconds as ``2023-11-14T22:13:20Z`` (what an out-of-order dead letter shows)."""
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return repr(seconds)
    return moment.isoformat().replace("+00:00", "Z")


def _stderr(message: str) -> None:
    import sys

    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def summary_line(stats: SeriesStreamStats) -> str:
    """``stream: 90000 records (3000 warm-up) in 3000 series, 0 malformed, ... in 4.20s``."""
    parts = [
        f"stream: {stats.records} records ({stats.warmup} warm-up) in {stats.series_seen} series",
        f"{stats.malformed} malformed",
    ]
    if stats.rejected:
        parts.append(f"{stats.rejected} rejected")
    parts.append(f"{stats.anomalies} {'anomaly' if stats.anomalies == 1 else 'anomalies'}")
    if stats.resumed:
        parts.append(f"{stats.resumed} series resumed from the model")
    if stats.drifts:
        parts.append(f"{stats.drifts} {'drift' if stats.drifts == 1 else 'drifts'} ({stats.retrains} refits)")
    if stats.evicted:
        parts.append(f"{stats.evicted} series evicted")
    if stats.fit_failures:
        parts.append(f"{stats.fit_failures} failed warm-up fits")
    return ", ".join(parts) + f" in {stats.seconds:.2f}s"


class SeriesStream:
    """An opened many-series stream: ``run()``, ``stop()``, ``stats``, ``close()``; a context manager."""

    def __init__(self, service: SeriesStreamService, owned: Sequence[Any], monitors: Sequence[Any]) -> None:
        self.service = service
        self._owned = list(owned)
        self._monitors = list(monitors)
        self._closed = False

    @property
    def id(self) -> str:
        return self.service.stream_id

    @property
    def stats(self) -> SeriesStreamStats:
        return self.service.stats

    def run(self, *, stop_on_sigterm: bool = False) -> SeriesStreamStats:
        import signal

        previous: Any = None
        installed = stop_on_sigterm and threading.current_thread() is threading.main_thread()
        if installed:
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        try:
            return self.service.run()
        finally:
            if installed:
                signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        self.service.stop()

    def close(self) -> None:
        """Close what the stream opened (outputs first, the source last); the first error is raised."""
        if self._closed:
            return
        self._closed = True
        first: BaseException | None = None
        for endpoint in self._owned:
            try:
                endpoint.close()
            except BaseException as exc:
                first = first or exc
        for monitor in self._monitors:
            self.service.events.close_monitor(monitor)
        if first is not None:
            raise first

    def __enter__(self) -> SeriesStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_series_stream(
    source: Any = "-",
    sink: Any = "-",
    *,
    algo: str | None = None,
    params: Mapping[str, Any] | Sequence[str] | None = None,
    series: str | None = None,
    time_field: str | None = None,
    value: str | None = None,
    warmup: int | None = None,
    threshold: str | float | None = None,
    max_series: int | None = None,
    keep_features: bool = False,
    batch_size: int = 1000,
    max_delay_ms: float = 200.0,
    max_record_bytes: int | None = None,
    min_anomalies: int = 1,
    within: int = 1,
    suppress: int = 0,
    monitors: Iterable[Any] = (),
    events: Any = None,
    dead_letter: Any = None,
    subscribers: Iterable[Any] = (),
    report: Callable[[str], None] | None = None,
    host: Any = None,
    model: Any = None,
    store: Any = None,
    drift: str = "none",
    drift_params: Mapping[str, Any] | Sequence[str] | None = None,
    retrain: str | None = None,
) -> SeriesStream:
    """Open a many-series stream, every option checked and every endpoint opened first.

    ``params`` is a mapping or ``KEY=VALUE`` strings for the detector (``algo``, default
    ``ts:auto``); ``threshold`` a number in ``[0, 1]`` (default the detectors'
    ``DEFAULT_THRESHOLD``). ``model`` is a stored time-series model (``NAME[@VERSION]`` in
    ``store``, or a loaded :class:`~adcore.timeseries.models.TimeSeriesModel`): it brings the
    detector, its parameters and threshold, and the series, time and value fields named at
    its fit unless given. ``drift`` (``ks``, ``psi``, ``adwin``, ``page-hinkley``) watches
    each series' raw values, ``drift_params`` its parameters (a mapping or ``KEY=VALUE``),
    ``retrain="on-drift"`` refits a drifted series. Sources, sinks, events and dead letters
    are as for :func:`adcore.open_stream`.
    """
    from adcore.domain.params import parse_key_values
    from adcore.services.events import load_monitors, load_subscribers
    from adcore.services.stream import _refuse_outputs_over_source, _subscriptions
    from adcore.services.streaming.endpoints import limit_record_size, sink_from, source_from

    report = report or _stderr
    _refuse_outputs_over_source(source, sink=sink, dead_letter=dead_letter, events=events)
    if not isinstance(params, Mapping):
        params = parse_key_values(list(params or []))
    if not isinstance(drift_params, Mapping):
        drift_params = parse_key_values(list(drift_params or []))
    check_drift_options(drift, drift_params, retrain)  # before any endpoint is opened
    if model is not None:
        if algo is not None or params:
            raise ParameterError(
                "--algo and --param cannot be combined with --model (the model brings its own)"
            )
        if isinstance(model, str):
            from adcore.timeseries.models import load_ts_model

            model = load_ts_model(model, store)
        series = series if series is not None else model.series_column
        time_field = time_field if time_field is not None else model.time_column
        value = value if value is not None else model.value_column
        threshold = threshold if threshold is not None else model.threshold
    label_threshold = parse_label_threshold(threshold)
    record_bytes = DEFAULT_MAX_RECORD_BYTES if max_record_bytes is None else int(max_record_bytes)
    if record_bytes < 1:
        raise ParameterError(f"--max-record-bytes must be at least 1, not {max_record_bytes}")
    opened: dict[str, Any] = {}
    built_monitors: list[Any] = []
    given = list(monitors)
    try:
        names = [m for m in given if isinstance(m, str)]
        built_monitors = load_monitors(names, host=host) if names else []
        event_sinks = []
        if events is not None:
            event_sink, owned = sink_from(events, what="event sink", host=host)
            event_sinks.append(event_sink)
            if owned:
                opened["events"] = event_sink
        bus = EventBus(
            monitors=[*built_monitors, *(m for m in given if not isinstance(m, str))],
            sinks=event_sinks,
            subscribers=[*load_subscribers(host=host, on_error=report), *_subscriptions(subscribers)],
            on_error=report,
        )
        letters = None
        if dead_letter is not None:
            letters, owned = sink_from(dead_letter, what="dead-letter sink", host=host)
            if owned:
                opened["dead_letter"] = letters
        out, owned = sink_from(sink, host=host)
        if owned:
            opened["sink"] = out
        src, owned = source_from(source, host=host)
        if owned:
            opened["source"] = src
        limit_record_size(src, record_bytes)
        service = SeriesStreamService(
            src,
            out,
            algo=algo or "ts:auto",
            params=params,
            series=series,
            time_field=time_field,
            value=value or "value",
            warmup=warmup,
            threshold=label_threshold,
            max_series=max_series,
            keep_features=keep_features,
            batch_size=batch_size,
            max_delay_ms=max_delay_ms,
            max_record_bytes=record_bytes,
            min_anomalies=min_anomalies,
            within=within,
            suppress=suppress,
            events=bus,
            dead_letter=letters,
            report=report,
            model=model,
            drift=drift,
            drift_params=drift_params,
            retrain=retrain,
        )
    except BaseException:
        for endpoint in [*reversed(opened.values()), *built_monitors]:
            with contextlib.suppress(Exception):
                endpoint.close()
        raise
    order = [opened[k] for k in ("sink", "dead_letter", "events", "source") if k in opened]
    return SeriesStream(service, order, built_monitors)
