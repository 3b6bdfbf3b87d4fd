"""``adcore.open_stream``: a stream service Python code opens as ``adcore stream`` does.

Opening a stream is where every mistake is caught, before the first record is read: the
settings are validated (:class:`~adcore.services.streaming.StreamConfig`), the detector is built
through the one detector spec every entry point shares (a seed is drawn when none is
given, and kept, so a run can be repeated), and the monitors, event sinks, dead letters,
sink and source are opened, in that order. If any of that fails, whatever was already
opened is closed again and the error (an :mod:`adcore.errors` type) propagates. The
:class:`Stream` that comes back is a context manager::

    import adcore

    out = []
    with adcore.open_stream(records, out, algo="core:hbos", window=200) as stream:
        stats = stream.run()          # until the source ends, or stream.stop()
    print(stats.records, stream.seed, out[-1]["score"])

``stop()`` may be called from any thread (or a signal handler): the current micro-batch is
finished and flushed, then ``run()`` returns. Events go to the plugins'
``register_event_subscribers`` subscribers as in the CLI, plus the ``subscribers=``
callables. See docs/streaming.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from adcore.domain.events import Event, EventBus, Subscription
from adcore.errors import ParameterError
from adcore.services.events import load_monitors, load_subscribers
from adcore.services.streaming.config import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_STREAM_ALGORITHM,
    StreamConfig,
    parse_drift_params,
)
from adcore.services.streaming.endpoints import limit_record_size, sink_from, source_from
from adcore.services.streaming.model import StreamModel
from adcore.services.streaming.service import StreamingService, StreamStats


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Stream:
    """An opened stream: run it, stop it, read its counts, close it (see the module docstring).

    ``id`` is the ``stream`` field of its events; ``seed`` the detector's seed (drawn when
    none was given; the stored one for a registry model); ``spec`` the detector spec it was
    built from (``None`` for a registry model).
    """

    def __init__(
        self, service: StreamingService, *, owned: Sequence[Any], monitors: Sequence[Any], spec: Any
    ) -> None:
        self.service = service
        self.spec = spec
        self._owned = list(owned)  # endpoints this stream opened, in closing order
        self._monitors = list(monitors)  # monitors it built (their close() is guarded)
        self._ran = False
        self._closed = False

    @property
    def id(self) -> str:
        return self.service.stream_id

    @property
    def seed(self) -> int | None:
        return self.service.model.seed

    @property
    def stats(self) -> StreamStats:
        """The counts so far (final once :meth:`run` returned)."""
        return self.service.stats

    def run(self, *, stop_on_sigterm: bool = False) -> StreamStats:
        """Process records until the source ends or :meth:`stop` is called; returns the counts.

        ``stop_on_sigterm=True`` (what the CLI uses) makes SIGTERM call :meth:`stop` while it
        runs, when called from the main thread; the previous handler is restored afterwards.
        A stream runs once.
        """
        if self._closed:
            raise RuntimeError("this stream is closed: open another")
        if self._ran:
            raise RuntimeError("this stream has already run: open another")
        self._ran = True
        previous: Any = None
        installed = False
        if stop_on_sigterm and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
            installed = True
        try:
            return self.service.run()
        finally:
            if installed:
                signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        """Finish and flush the current micro-batch, then return from :meth:`run` (thread-safe)."""
        self.service.stop()

    def close(self) -> None:
        """Close what the stream opened: sink, dead letters, event sinks, monitors, then the source.

        Idempotent. Every endpoint is closed even when one fails; the first failure is raised
        (a sink that cannot flush its last records must not pass unnoticed).
        """
        if self._closed:
            return
        self._closed = True
        first: BaseException | None = None
        for endpoint in self._owned:
            try:
                endpoint.close()
            except BaseException as exc:  # close the rest, then raise the first
                first = first or exc
        for monitor in self._monitors:
            self.service.events.close_monitor(monitor)
        if first is not None:
            raise first

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_stream(
    source: Any = "-",
    sink: Any = "-",
    *,
    algo: str | Callable[..., Any] | None = None,
    model: str | None = None,
    store: Any = None,
    params: Mapping[str, Any] | Sequence[str] | None = None,
    contamination: float | None = None,
    threshold: str | None = None,
    seed: int | None = None,
    features: Sequence[str] | str | None = None,
    keep_features: bool = False,
    window: int = 1000,
    window_type: str = "sliding",
    warmup: int | None = None,
    retrain: str | None = None,
    drift: str = "none",
    drift_on: str = "scores",
    drift_params: Mapping[str, Any] | Sequence[str] | None = None,
    save_retrained: str | None = None,
    batch_size: int = 1000,
    max_delay_ms: float = 200.0,
    max_record_bytes: int | None = None,
    p_values: bool = False,
    min_anomalies: int = 1,
    within: int = 1,
    suppress: int = 0,
    alert_key: str | None = None,
    monitors: Iterable[Any] = (),
    events: Any = None,
    dead_letter: Any = None,
    subscribers: Iterable[Callable[[Event], Any] | Subscription] = (),
    report: Callable[[str], None] | None = None,
    host: Any = None,
) -> Stream:
    """Open a stream from ``source`` to ``sink``, every option checked before a record is read.

    Parameters
    ----------
    source, sink : str or object
        A URL (``-`` for stdin/stdout, ``file://PATH``, a plugin's ``kafka://...``) or an
        object: see :mod:`adcore.services.streaming.endpoints` (a list of records or lines, an open
        file, any messaging Source/Sink; a list as sink collects the output records).
    algo, params, contamination, threshold, seed
        The detector the stream fits after warm-up (default
        :data:`~adcore.services.streaming.config.DEFAULT_STREAM_ALGORITHM`), built through
        :func:`adcore.services.spec.detector_spec`; ``params`` is a mapping or ``KEY=VALUE``
        strings. A seed is drawn when none is given (``Stream.seed``).
    model, store
        Start from a stored model (``NAME`` or ``NAME@VERSION``) instead; it excludes the
        detector options. ``store`` is the model store (also for ``save_retrained``).
    features, keep_features, window, window_type, warmup, retrain, drift, drift_on, drift_params,
    save_retrained, batch_size, max_delay_ms, max_record_bytes
        As the ``adcore stream`` options of the same names (docs/streaming.md).
    p_values, min_anomalies, within, suppress, alert_key
        ``--output-p-values``, and the alert rule gating ``anomaly.detected`` events
        (``--min-anomalies K --within N``, ``--suppress R``, ``--alert-key FIELD``;
        docs/thresholds.md).
    monitors : names or objects
        Monitors receiving every event (``"log"``, a plugin's name, or an object with
        ``record(event)``).
    events, dead_letter : URL or object, optional
        A sink for every event (one JSON document each), and one for records that are
        malformed or that the detector refused (default: one line each through ``report``).
    subscribers : callables or Subscriptions
        Called with every event, besides the plugins' ``register_event_subscribers``.
    report : callable, optional
        Receives one-line notices (skipped records, a failed refit, a broken listener);
        default: stderr.

    Raises
    ------
    adcore.errors.AdcoreError
        Any option, detector, model or endpoint that cannot be used.
    """
    report = report or _stderr
    _refuse_outputs_over_source(source, sink=sink, dead_letter=dead_letter, events=events)
    if model is not None:
        _refuse_detector_options(
            algo=algo, params=params, contamination=contamination, threshold=threshold, seed=seed
        )
    wanted = StreamConfig(
        window=window,
        window_type=window_type,
        warmup=warmup,
        retrain=retrain,
        drift=drift,
        drift_on=drift_on,
        drift_params=_drift_params(drift_params),
        batch_size=batch_size,
        max_delay_ms=max_delay_ms,
        max_record_bytes=DEFAULT_MAX_RECORD_BYTES if max_record_bytes is None else max_record_bytes,
        features=_feature_names(features),
        keep_features=keep_features,
        save_retrained=save_retrained,
        from_model=model is not None,
        p_values=p_values,
        min_anomalies=min_anomalies,
        within=within,
        suppress=suppress,
        alert_key=alert_key,
    )
    wanted.validated()  # every option checked before a model is loaded or a plugin imported
    spec = None
    if model is not None:
        stream_model = StreamModel.from_registry(model, store=store, save_as=save_retrained)
    else:
        from adcore.services.spec import detector_spec

        spec = detector_spec(
            algo or DEFAULT_STREAM_ALGORITHM,
            params,
            contamination=contamination,
            threshold=threshold,
            seed=seed,
            draw_seed=True,
        )
        stream_model = StreamModel.from_algorithm(spec.build(), save_as=save_retrained, store=store)
    # The retrain default and ``learn`` depend on whether the detector learns online.
    config = dataclasses.replace(wanted, online=stream_model.online).validated()
    return _open(
        source, sink, stream_model, config, spec, monitors, events, dead_letter, subscribers, report, host
    )


def _open(
    source: Any,
    sink: Any,
    stream_model: StreamModel,
    config: StreamConfig,
    spec: Any,
    monitors: Iterable[Any],
    events: Any,
    dead_letter: Any,
    subscribers: Iterable[Any],
    report: Callable[[str], None],
    host: Any,
) -> Stream:
    """Open the endpoints in order; on any failure close those already opened, then re-raise."""
    opened: dict[str, Any] = {}  # what this stream opened (and so closes), in opening order
    built_monitors: list[Any] = []
    given = list(monitors)
    try:
        names = [m for m in given if isinstance(m, str)]
        built_monitors = load_monitors(names, host=host) if names else []
        listeners = [*built_monitors, *(m for m in given if not isinstance(m, str))]
        event_sinks = []
        if events is not None:
            event_sink, owned = sink_from(events, what="event sink", host=host)
            event_sinks.append(event_sink)
            if owned:
                opened["events"] = event_sink
        bus = EventBus(
            monitors=listeners,
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
        limit_record_size(src, config.max_record_bytes)
        service = StreamingService(
            src, out, stream_model, config, events=bus, dead_letter=letters, report=report
        )
    except BaseException:
        for endpoint in [*reversed(opened.values()), *built_monitors]:
            with contextlib.suppress(Exception):  # the error that stopped the opening is the one to see
                endpoint.close()
        raise
    # Outputs first, so a sink that cannot flush is the error raised; the source last.
    order = [opened[k] for k in ("sink", "dead_letter", "events", "source") if k in opened]
    return Stream(service, owned=order, monitors=built_monitors, spec=spec)


def _refuse_outputs_over_source(source: Any, **outputs: Any) -> None:
    """Refuse a sink, dead-letter or event file that is the source file (by any name or link).

    The file sink appends to the file the source is reading: the stream would read its own
    output forever, and the input is no longer what the user had. Only ``file://`` URLs are
    compared; other transports name no local file.
    """
    from adcore.io.writers import same_file

    source_path = _local_file(source)
    if source_path is None:
        return
    for option, value in outputs.items():
        path = _local_file(value)
        if path is not None and same_file(path, source_path):
            flag = "--" + option.replace("_", "-")
            raise ParameterError(
                f"{flag} {value} is the --source file: the stream would write into what it reads; "
                "choose another file"
            )


def _local_file(value: Any) -> str | None:
    """The path a ``file://`` URL names (``file:///abs`` or ``file://relative``), else None."""
    if not isinstance(value, str) or not value.lower().startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    parsed = urlparse(value)
    return unquote((parsed.netloc or "") + parsed.path)


def _refuse_detector_options(**options: Any) -> None:
    """A stored model brings its own detector: options that would build another are mistakes."""
    given = [f"--{name}" for name, value in options.items() if value is not None and value not in ([], {})]
    if given:
        given = ["--param" if g == "--params" else g for g in given]
        raise ParameterError(f"{', '.join(given)} cannot be combined with --model (the model brings its own)")


def _drift_params(params: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """A mapping as it is; ``KEY=VALUE`` strings (``--drift-param``) parsed."""
    if isinstance(params, Mapping):
        return dict(params)
    return parse_drift_params(list(params or []))


def _feature_names(features: Sequence[str] | str | None) -> list[str] | None:
    if features is None:
        return None
    if isinstance(features, str):
        return [name.strip() for name in features.split(",")]
    return list(features)


def _subscriptions(subscribers: Iterable[Any]) -> list[Subscription]:
    out = []
    for i, sub in enumerate(subscribers):
        if isinstance(sub, Subscription):
            out.append(sub)
        elif callable(sub):
            out.append(Subscription(getattr(sub, "__qualname__", f"subscriber {i}"), sub))
        else:
            raise ParameterError(
                f"subscribers: {type(sub).__name__} is not callable (it receives each event)"
            )
    return out
