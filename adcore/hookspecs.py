"""The ports: every hook a plugin can implement.

This file is the public plugin contract (see docs/plugins.md). Hooks are named
``register_*`` and receive a ``register`` callback rather than returning lists, so a
plugin registers as many things as it likes, and the host knows which plugin each
registration came from. Hooks are added, never renamed.

``register(name, factory, **metadata)`` is the same shape for every port:

- ``name``: short name, qualified by the plugin's entry-point name (``pyod:iforest``).
- ``factory``: a class or callable building the object, or a lazy ``"module:attr"``
  string. Registering must stay cheap: never import a heavy library at registration.
- ``metadata``: port-specific keywords (``summary``, ``params``, ``tags``, ``needs``...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "adcore"
ENTRY_POINT_GROUP = "adcore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., None]


@hookspec
def register_detectors(register: Register) -> None:
    """Register anomaly detectors.

    Called once per process when the plugin host collects detectors (the first time
    an algorithm is listed or built).

    :param register: ``register(name, factory, *, summary="", params=None, tags=(),
        needs=(), **metadata)``. ``factory(**params)`` must return an object with
        ``fit(X, y=None)`` and ``decision_function(X)`` (higher = more anomalous); the
        core wraps it with thresholds, labels and validation. ``params`` is a pydantic
        model (or ``"module:Model"``) describing the parameters; when omitted it is
        derived from the factory's signature. ``needs`` names optional packages the
        detector imports, so a missing one gives a clean "pip install" error.
    """


@hookspec
def register_storage(register: Register) -> None:
    """Register model-store backends.

    Called when a model store is opened. ``register(scheme, factory, summary="")``:
    ``scheme`` is the URL scheme the backend serves (``file``, ``postgresql``);
    ``factory(url: str)`` returns the store.
    """


@hookspec
def register_monitors(register: Register) -> None:
    """Register monitors: sinks for metrics and events.

    Called when a service starts monitoring. ``register(name, factory, summary="")``;
    ``factory(**options)`` returns an object with ``record(event)``.
    """


@hookspec
def register_messaging(register: Register) -> None:
    """Register stream sources and sinks.

    Called when a stream is opened. ``register(scheme, factory, kind="source"|"sink",
    summary="")``: ``scheme`` is the URL scheme (``stdio``, ``file``, ``kafka``);
    ``factory(url: str, **options)`` returns the source or sink.

    :param register: ``register(scheme, factory, *, kind="source+sink", summary="")``.
        ``kind`` is ``source``, ``sink`` or ``source+sink``; the factory is called as
        ``factory(url, kind="source"|"sink")``. A source has ``poll(max_records, timeout)``
        (a list of ``bytes``/``str``/``adcore.messaging.Message``, ``[]`` on timeout,
        ``None`` at the end), ``commit()`` (called after each batch's output is flushed:
        commit offsets there for at-least-once delivery) and ``close()``; a plain iterable
        of lines is accepted too. A sink has ``write(value: bytes, metadata=None)``,
        ``flush()`` and ``close()``. See ``adcore.messaging``.
    """


@hookspec
def register_event_subscribers(register: Register) -> None:
    """Subscribe to the events a service publishes (``adcore stream``).

    Called when a stream starts. Each subscriber receives every event of the types it
    asked for, after the micro-batch that caused it was written and flushed, on the
    service's thread (return quickly; hand slow work to a queue). An exception is
    reported once on stderr and never stops the stream.

    :param register: ``register(name, callback, *, types=(), summary="")``. ``callback(event)``
        receives an ``adcore.events.Event`` (``event.type``, ``event.to_dict()``), or is a
        lazy ``"module:attr"`` string. ``types`` limits it to some of
        ``detection.completed``, ``anomaly.detected``, ``drift.detected``,
        ``model.retrained``; empty means all.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add sub-commands to the ``adcore`` CLI.

    Called once when the CLI starts, after the built-in commands exist.

    :param cli: the root ``typer.Typer`` app; add commands with ``@cli.command()`` or
        groups with ``cli.add_typer(...)``.
    """


@hookspec
def register_routes(app: Any) -> None:
    """Add HTTP routes to ``adcore serve`` (needs the ``server`` extra).

    Called once per plugin when the server app is created, after the built-in routes
    exist. A hook that raises is logged as a warning by the server, which starts without
    any of that plugin's routes.

    :param app: a fresh ``fastapi.APIRouter`` for this plugin, included in the server's app
        when the hook returns: add routes with ``@app.get("/v1/myplugin/...")`` (prefix
        paths with your plugin's name). They get the server's API-key check, rate limit
        and error shape, like the built-in ``/v1`` routes. Run CPU-heavy work off the
        event loop (``fastapi.concurrency.run_in_threadpool``).
    """
