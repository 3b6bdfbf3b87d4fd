"""OpenTelemetry spans for fit, score, explain, the model store, stream batches and jobs.

Off by default, and free when off: :func:`span` then returns one shared no-op context
manager and nothing imports ``opentelemetry`` (``adcore algos`` and ``import adcore`` must stay
fast, and the SDK is an optional extra: ``pip install adcore[tracing]``). Tracing is on only
when the standard variables ask for it, so operators configure adcore like any other
OpenTelemetry service and adcore invents no settings of its own:

- ``OTEL_TRACES_EXPORTER=otlp`` or ``console``, or
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set (exporter ``otlp``);
- ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn it off whatever else is set.

The SDK is configured lazily, on the first span: a ``TracerProvider`` whose resource is
``service.name`` = ``$OTEL_SERVICE_NAME`` (default ``adcore``) plus ``$OTEL_RESOURCE_ATTRIBUTES``,
a ``BatchSpanProcessor`` (so spans never wait on the network), and the OTLP/HTTP exporter,
which reads the other ``OTEL_EXPORTER_OTLP_*`` variables itself. The provider is shut down at
process exit, which flushes the spans a short CLI run made.

Trace context crosses process boundaries as W3C ``traceparent`` in a plain ``dict`` carrier
(:func:`inject` / :func:`extract`): HTTP headers, a job's payload.
See docs/tracing.md.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: Variables whose presence turns tracing on (their values are read by the SDK itself).
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
EXPORTERS = ("otlp", "console")
TRACER_NAME = "adcore"
DEFAULT_SERVICE_NAME = "adcore"
#: Links one span may carry (a batch of 1000 Kafka records from 1000 traces stays a small span).
MAX_LINKS = 128

_NOOP = contextlib.nullcontext()
_lock = threading.Lock()
#: None: not decided yet; False: off; otherwise the tracer spans are made with.
_tracer: Any = None
_exporter: str | None = None


def requested_exporter(environ: Mapping[str, str] | None = None) -> str | None:
    """The exporter the environment asks for (``otlp`` or ``console``), or None when tracing is off.

    Pure and cheap (no import): what decides whether the SDK is ever loaded.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    # The variable may list several exporters; take the first one we know.
    named = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if "none" in named:
        return None
    for name in named:
        if name in EXPORTERS:
            return name
    if any(env.get(v, "").strip() for v in ENDPOINT_VARIABLES):
        return "otlp"
    return None


def enabled() -> bool:
    """Whether spans are recorded (decided once per process, or by :func:`configure`)."""
    return _get_tracer() is not None


def _get_tracer() -> Any:
    global _tracer, _exporter
    tracer = _tracer
    if tracer is not None:
        return tracer or None
    with _lock:
        if _tracer is None:
            _exporter = requested_exporter()
            _tracer = _configure_from_env(_exporter) if _exporter else False
        return _tracer or None


def _configure_from_env(exporter_name: str) -> Any:
    """Build the SDK pipeline the environment asks for; install it as the global provider."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter_name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter: Any = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_*
    service = os.environ.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME
    # shutdown_on_exit=False: we register our own, below, so the order is ours and it runs once.
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    atexit.register(provider.shutdown)  # flush what a short CLI run recorded before the process ends
    # Global, so a plugin's own instrumentation (an HTTP client, a database driver) joins our traces.
    trace.set_tracer_provider(provider)
    return trace.get_tracer(TRACER_NAME)


def configure(provider: Any | None) -> None:
    """Record spans with ``provider`` (tests: an SDK provider with an in-memory exporter).

    ``None`` forgets any configuration, so the next span decides again from the environment.
    The global provider is left alone: OpenTelemetry allows setting it once per process.
    """
    global _tracer, _exporter
    with _lock:
        _tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None
        _exporter = None


def span(
    name: str,
    *,
    context: Mapping[str, str] | None = None,
    links: Sequence[Mapping[str, str]] = (),
    **attributes: Any,
) -> Any:
    """A context manager around one unit of work; a shared no-op when tracing is off.

    ``context``: a carrier (``{"traceparent": ...}``) whose trace this span continues, for
    work that arrived from another process. ``links``: carriers of other work this span
    handles without being its child (a stream batch merges records from many traces).
    ``attributes`` whose value is None are left out; others must be str, bool, int, float or
    sequences of them (anything else is ``str()``-ed). The span records an exception that
    escapes it and is marked as an error.

    Inside a trace the sampler dropped, a child span is the shared no-op too: every standard
    sampler (``parentbased_*``, ``traceidratio``, ``always_*``) drops a dropped trace's children,
    so asking the SDK would only build a non-recording span and attach and detach a context to
    learn it. That keeps an unsampled request at one sampling decision, whatever it does.
    """
    tracer = _tracer if _tracer is not None else _get_tracer()
    if not tracer:
        return _NOOP
    if context is None and not links and _in_dropped_trace():
        return _NOOP
    return _span(tracer, name, context, links, attributes)


def _in_dropped_trace() -> bool:
    """Whether the current span belongs to a trace the sampler did not record."""
    from opentelemetry.trace import get_current_span  # imported already: tracing is on

    current = get_current_span()
    return not current.is_recording() and current.get_span_context().is_valid


@contextlib.contextmanager
def _span(
    tracer: Any,
    name: str,
    carrier: Mapping[str, str] | None,
    link_carriers: Sequence[Mapping[str, str]],
    attributes: dict[str, Any],
) -> Iterator[Any]:
    parent = extract(carrier) if carrier else None
    clean = {_key(k): _attribute(v) for k, v in attributes.items() if v is not None}
    links = _links(link_carriers) if link_carriers else None
    with tracer.start_as_current_span(name, context=parent, attributes=clean, links=links) as current:
        yield current


def _links(carriers: Sequence[Mapping[str, str]]) -> list[Any]:
    """Span links to the distinct, valid contexts among ``carriers`` (at most :data:`MAX_LINKS`)."""
    from opentelemetry import trace

    out, seen = [], set()
    for carrier in carriers:
        ctx = trace.get_current_span(extract(carrier)).get_span_context()
        if ctx.is_valid and (ctx.trace_id, ctx.span_id) not in seen:
            seen.add((ctx.trace_id, ctx.span_id))
            out.append(trace.Link(ctx))
            if len(out) >= MAX_LINKS:
                break
    return out


def _key(name: str) -> str:
    """Our attributes live under ``adcore.``; dotted names are standard ones (``http.route``)."""
    return name if "." in name else f"adcore.{name}"


def _attribute(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return list(value)
    try:  # numpy scalars
        return value.item()
    except AttributeError:
        return str(value)


def set_attributes(**attributes: Any) -> None:
    """Add attributes to the current span (known only once the work is done: rows read, a ref)."""
    if not enabled():
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(_key(key), _attribute(value))


def inject(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, ``tracestate``); ``{}`` when off."""
    out = {} if carrier is None else carrier
    if enabled():
        from opentelemetry import propagate

        propagate.inject(out)
    return out


def extract(carrier: Mapping[str, str] | None) -> Any:
    """An OpenTelemetry context from W3C headers (None when tracing is off or nothing is given)."""
    if not carrier or not enabled():
        return None
    from opentelemetry import propagate

    return propagate.extract(dict(carrier))


def current_trace_id() -> str | None:
    """The current span's trace id in hex, or None (for logs and tests)."""
    if not enabled():
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
