"""Events: what a stream run or the server tells the outside world, and the bus that delivers them.

Eleven event types, each a small frozen dataclass whose ``to_dict()`` is plain JSON:
``detection.completed`` (one per micro-batch, or per scoring request), ``anomaly.detected``
(one per anomalous record), ``drift.detected``, ``model.retrained`` (a stream's fit),
``model.refit_failed`` (a stream's fit that failed, the previous model kept) and
``model.saved`` (a model version written to the store by a stream, ``adcore fit`` or
``POST /v1/models``) and ``bench.completed`` (``adcore bench``: every record of the run, for
trackers such as adcore-mlflow), and the asynchronous jobs' ``job.queued``, ``job.started``,
``job.finished`` and ``job.failed`` (``POST /v1/jobs``, ``adcore worker``). Every event has
``id`` (a UUID4), ``type``, ``timestamp`` (UTC ISO-8601 with ``Z``) and ``stream`` (the id
of the run that emitted it, so events from several runs in one sink can be told apart;
``serve:...`` for the server's, ``job:<id>`` for a job's).

The :class:`EventBus` publishes each event through the three places a deployment may
listen: monitors (``register_monitors``: ``record(event)``), sinks of the messaging port
(``--events URL``: one JSON line per event) and subscribers (``register_event_subscribers``:
``callback(event)``, optionally for some types only). A monitor or subscriber that raises is
reported once and keeps receiving events: a broken plugin must not stop scoring. A sink
error is not caught: the user asked for that sink, and losing events silently is worse.
Nobody listening costs nothing: publishers ask :meth:`EventBus.wants` before building
events (there can be one per anomaly).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar

from adcore.errors import ParameterError
from adcore.io import jsonio


def new_event_id() -> str:
    return str(uuid.uuid4())


def utc_timestamp() -> str:
    """``2025-01-31T12:00:00.123456Z``: ISO-8601, UTC, microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Fields every event has; subclasses add their payload."""

    type: ClassVar[str] = "event"
    id: str = field(default_factory=new_event_id)
    timestamp: str = field(default_factory=utc_timestamp)
    stream: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "type", "timestamp", "stream", ...payload}``: JSON-serialisable."""
        out: dict[str, Any] = {"id": self.id, "type": self.type, "timestamp": self.timestamp}
        for f in fields(self):
            if f.name not in out:
                out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True, kw_only=True)
class DetectionCompleted(Event):
    """One micro-batch was scored and its output flushed.

    Offsets count valid records from 0 in output order (line ``offset + 1`` of the output);
    ``first_offset``/``last_offset`` are ``None`` for a batch of malformed lines only.
    ``rejected`` counts records the detector refused to score (sent to the dead letters,
    like malformed lines, and not in the output).
    """

    type: ClassVar[str] = "detection.completed"
    records: int
    scored: int
    warmup: int
    anomalies: int
    malformed: int
    first_offset: int | None
    last_offset: int | None
    model: str | None
    threshold: float | None
    duration_ms: float
    rejected: int = 0


@dataclass(frozen=True, kw_only=True)
class AnomalyDetected(Event):
    """One record scored above the threshold.

    ``record_id`` is the record's ``id`` field when it has one; ``metadata`` is what the
    source knew about it (Kafka topic/partition/offset/key), else ``None``; ``series`` the
    record's series key in a many-series stream (``--series``), else ``None``.
    """

    type: ClassVar[str] = "anomaly.detected"
    offset: int
    line_number: int
    score: float
    threshold: float
    model: str | None
    record_id: Any = None
    metadata: Mapping[str, Any] | None = None
    series: Any = None


@dataclass(frozen=True, kw_only=True)
class DriftDetected(Event):
    """A drift detector fired (see :class:`adcore.domain.drift.DriftSignal`).

    ``offset`` is the record at which it fired; ``on`` is ``scores`` or ``features``;
    ``action`` is ``retrain`` (a ``model.retrained`` event follows), ``none`` (the retrain
    policy is not ``on-drift``) or ``skipped`` (too few records in the window to refit).
    ``series`` is the series key in a many-series stream (``on`` is then ``values``: the
    series' raw values), else ``None``.
    """

    type: ClassVar[str] = "drift.detected"
    detector: str
    on: str
    offset: int
    statistic: float | None
    threshold: float | None
    p_value: float | None = None
    feature: str | None = None
    action: str = "none"
    series: Any = None


@dataclass(frozen=True, kw_only=True)
class ModelRetrained(Event):
    """The stream's model was (re)fitted on the recent window.

    ``reason`` is ``initial`` (end of warm-up), ``periodic`` (``--retrain every:N``) or
    ``drift``. ``model`` labels the new model (``name@version`` when saved with
    ``--save-retrained``, ``base@version+rK`` for the K-th unsaved refit of a registry
    model, else ``None``); ``saved`` says whether it was written to the model store;
    ``seed`` is the detector's seed (``--seed`` repeats the fit).
    """

    type: ClassVar[str] = "model.retrained"
    reason: str
    offset: int
    n_samples: int
    algorithm: str
    threshold: float
    previous_threshold: float | None
    model: str | None
    previous_model: str | None
    saved: bool
    fit_ms: float
    seed: int | None = None


@dataclass(frozen=True, kw_only=True)
class RefitFailed(Event):
    """A stream's fit failed with a typed error (:mod:`adcore.errors`); scoring went on.

    ``reason`` is as for ``model.retrained``; ``model`` is the model still scoring (its
    label, ``None`` for an unlabelled one). ``error`` is the one-line message,
    ``error_type`` its class (``DataError``, ``ParameterError``, ``StoreError``...) and
    ``parameter`` the detector parameter it names, when known. A first fit (``initial``)
    that fails has no model to fall back on: it ends the stream instead of publishing this.
    """

    type: ClassVar[str] = "model.refit_failed"
    reason: str
    offset: int
    n_samples: int
    algorithm: str
    model: str | None
    error: str
    error_type: str
    parameter: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelSaved(Event):
    """A model version was written to the model store.

    Published by ``adcore stream --save-retrained`` (after its ``model.retrained``),
    ``adcore fit`` and ``POST /v1/models``. ``model`` is ``name@version``; ``seed`` is the
    seed the fit used (``--seed`` repeats it).
    """

    type: ClassVar[str] = "model.saved"
    model: str
    name: str
    version: int
    algorithm: str
    threshold: float | None
    seed: int | None
    n_samples: int
    n_features: int
    sha256: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    store: str | None = None

    @classmethod
    def from_record(
        cls, record: Any, *, stream: str | None = None, store: str | None = None, **metrics: Any
    ) -> ModelSaved:
        """The event for a :class:`adcore.services.registry.ModelRecord` just saved.

        ``params`` are the detector's parameters plus the wrapper's (contamination, threshold
        method); ``metrics`` the record's training metrics, its training-score quantiles as
        ``score_q<q>``, and any extra ``metrics`` given (ROC-AUC with labels): what a tracker
        logs for the fit. ``store`` is the store's URL, without a password.
        """
        threshold = jsonio.finite_or_none(record.threshold) if record.threshold is not None else None
        params = dict(getattr(record, "params", None) or {})
        params.update(
            contamination=getattr(record, "contamination", None),
            threshold_method=getattr(record, "threshold_method", None),
        )
        measured = dict(getattr(record, "metrics", None) or {})
        for q, value in (getattr(record, "score_quantiles", None) or {}).items():
            measured[f"score_q{q}"] = value
        measured.update(metrics)
        return cls(
            stream=stream,
            model=record.ref,
            name=record.name,
            version=int(record.version),
            algorithm=record.algorithm,
            threshold=threshold,
            seed=record.seed,
            n_samples=int(record.n_samples),
            n_features=int(record.n_features),
            sha256=record.sha256,
            params=jsonio.jsonable(params),
            metrics=jsonio.jsonable({k: v for k, v in measured.items() if v is not None}),
            store=store,
        )


@dataclass(frozen=True, kw_only=True)
class BenchCompleted(Event):
    """``adcore bench`` finished: every (dataset, detector) record, the summary, the files written.

    ``records`` are the rows of ``adcore bench --json``'s ``records`` (dataset, algorithm,
    roc_auc, average_precision, fit and score seconds...), ``summary`` its per-detector rows,
    ``artifacts`` the paths of the table and plot the run wrote.
    """

    type: ClassVar[str] = "bench.completed"
    records: list[dict[str, Any]]
    summary: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobQueued(Event):
    """An asynchronous job was accepted (``POST /v1/jobs``) and waits for a worker.

    ``job`` is its id, ``kind`` ``score``/``fit``/``detect``, ``priority`` ``high``/``normal``/``low``;
    ``input``/``output`` its URIs (``None`` for inline ``detect`` rows). ``stream`` is ``job:<id>``.
    """

    type: ClassVar[str] = "job.queued"
    job: str
    kind: str
    priority: str
    input: str | None = None
    output: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobStarted(Event):
    """A worker (``worker``: its name, or ``embedded``) started running a job; a rerun after a
    dead worker publishes it again with ``attempt`` one higher."""

    type: ClassVar[str] = "job.started"
    job: str
    kind: str
    priority: str
    worker: str
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class JobFinished(Event):
    """A job finished: ``seconds`` it ran, ``output`` it wrote, ``summary`` (rows, anomalies, model)."""

    type: ClassVar[str] = "job.finished"
    job: str
    kind: str
    priority: str
    seconds: float
    output: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class JobFailed(Event):
    """A job failed: ``error`` is the one line the CLI would print, ``error_type`` its class."""

    type: ClassVar[str] = "job.failed"
    job: str
    kind: str
    priority: str
    seconds: float
    error: str
    error_type: str


EVENT_CLASSES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        DetectionCompleted,
        AnomalyDetected,
        DriftDetected,
        ModelRetrained,
        RefitFailed,
        ModelSaved,
        BenchCompleted,
        JobQueued,
        JobStarted,
        JobFinished,
        JobFailed,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_CLASSES)


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from its ``to_dict()`` (what a consumer of ``--events`` reads back)."""
    cls = EVENT_CLASSES.get(str(data.get("type")))
    if cls is None:
        raise ParameterError(f"unknown event type {data.get('type')!r}; known: {', '.join(EVENT_TYPES)}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


# ---------------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Subscription:
    """A callback for some event types (``types=None``: all of them)."""

    name: str
    callback: Callable[[Event], Any]
    types: frozenset[str] | None = None

    def accepts(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types


def check_event_types(types: Any, *, who: str) -> frozenset[str] | None:
    """Normalise a ``types=`` argument: ``None``/empty = all; a string = one type."""
    if types is None:
        return None
    if isinstance(types, str):
        types = (types,)
    wanted = frozenset(types)
    unknown = sorted(str(t) for t in wanted - set(EVENT_TYPES))
    if unknown:
        raise ParameterError(
            f"{who}: unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return wanted or None


class EventBus:
    """Delivers events to monitors, sinks and subscribers (see the module docstring)."""

    def __init__(
        self,
        *,
        monitors: Iterable[Any] = (),
        sinks: Iterable[Any] = (),
        subscribers: Iterable[Subscription] = (),
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.monitors = list(monitors)
        self.sinks = list(sinks)
        self.subscribers = list(subscribers)
        self._on_error = on_error
        self._failed: set[str] = set()
        everyone = bool(self.monitors or self.sinks) or any(s.types is None for s in self.subscribers)
        self._wanted = (
            frozenset(EVENT_TYPES)
            if everyone
            else frozenset().union(*(s.types or () for s in self.subscribers))
        )

    def wants(self, event_type: str) -> bool:
        """Whether anyone listens for ``event_type`` (so the caller may skip building it)."""
        return event_type in self._wanted

    def publish(self, event: Event) -> None:
        if event.type not in self._wanted:
            return
        payload: bytes | None = None
        for sink in self.sinks:
            if payload is None:
                payload = jsonio.dumps(event.to_dict())
            write_event = getattr(sink, "write_event", None)  # a sink that keys/labels events (Kafka)
            if write_event is not None:
                write_event(payload, event)
            else:
                sink.write(payload, None)
        for monitor in self.monitors:
            self._guarded(f"monitor {type(monitor).__name__}", event.type, monitor.record, event)
        for sub in self.subscribers:
            if sub.accepts(event.type):
                self._guarded(f"subscriber {sub.name}", event.type, sub.callback, event)

    def _guarded(self, who: str, context: str, call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except Exception as exc:  # a listener's bug must not stop the stream
            if who not in self._failed:
                self._failed.add(who)
                if self._on_error is not None:
                    self._on_error(
                        f"{who} failed on {context}: {type(exc).__name__}: {exc} (further errors muted)"
                    )

    def flush(self) -> None:
        """Flush the sinks (and monitors that buffer); called once per micro-batch."""
        for sink in self.sinks:
            sink.flush()
        for monitor in self.monitors:
            if callable(getattr(monitor, "flush", None)):
                self._guarded(f"monitor {type(monitor).__name__}", "flush", monitor.flush)

    def close(self) -> None:
        """Close every sink, then every monitor."""
        for sink in self.sinks:
            sink.close()
        for monitor in self.monitors:
            self.close_monitor(monitor)

    def close_monitor(self, monitor: Any) -> None:
        """Close one monitor, if it can be closed (a failure is reported, never raised)."""
        if callable(getattr(monitor, "close", None)):
            self._guarded(f"monitor {type(monitor).__name__}", "close", monitor.close)
