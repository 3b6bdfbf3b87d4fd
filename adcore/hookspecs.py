"""The ports: every hook a plugin can implement, and the keywords each port's ``register`` accepts.

This file is the public plugin contract (see docs/plugins.md). Hooks are named
``register_*`` and receive a ``register`` callback rather than returning lists, so a
plugin registers as many things as it likes, and the host knows which plugin each
registration came from. Hooks are added, never renamed.

``register(name, factory, **metadata)`` is the same shape for every port:

- ``name``: short name, qualified by the plugin's entry-point name (``pyod:iforest``).
- ``factory``: a class or callable building the object, or a lazy ``"module:attr"``
  string. Registering must stay cheap: never import a heavy library at registration.
- ``metadata``: the keywords declared for the port in :data:`PORTS` (``summary``,
  ``needs``...). Any other keyword is refused, with "did you mean", and reported against
  the plugin by ``adcore plugins``: a misspelled ``xfail_check=`` must not pass silently.
  A plugin keeps metadata of its own in the one ``extra={...}`` dict every port accepts.

A new port (batch executors, job queues, alert sinks) is one hookspec below plus one
:class:`Port` in :data:`PORTS`; the host, ``adcore plugins`` and the docs tests pick it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pluggy

PROJECT_NAME = "adcore"
ENTRY_POINT_GROUP = "adcore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., None]


class Port(NamedTuple):
    """One port: the hook that fills it, its registry's name, and what ``register`` accepts.

    Declared here, beside the hooks, so that the contract is one file: ``keywords`` maps
    every keyword this port's ``register`` accepts to what it means (docs/plugins.md repeats
    each one, and tests/test_hookspecs.py fails when it does not). ``label`` is how messages
    name one registration ("unknown algorithm 'x'"); ``schemes`` says names are URL schemes.
    (A NamedTuple rather than a dataclass: ``import adcore`` imports this module, and
    ``dataclasses`` alone would add a few milliseconds to every start-up.)
    """

    hook: str
    kind: str
    label: str
    keywords: Mapping[str, str]
    schemes: bool = False


#: Keywords every port accepts.
COMMON_KEYWORDS: Mapping[str, str] = {
    "summary": "one line for listings (adcore algos, the server's /v1/algorithms)",
    "needs": "optional packages (pip names) the factory imports; while one is missing, using the "
    "registration fails with exit code 2 and 'pip install NAME'",
    "install": "what to pip install for the needs when it is not the needs themselves, "
    'e.g. "adcore[postgres]" (added to the missing-package message)',
    "extra": "a dict of the plugin's own metadata, kept unchanged in Registration.metadata['extra']",
}

_DETECTOR_KEYWORDS: Mapping[str, str] = {
    "params": 'the parameters: a pydantic model (or "module:Model"), a list of dicts, or None to read '
    "them from the factory's signature",
    "tags": "free-form labels (adcore algos --json; ensembles select members by tag)",
    "heavy_modules": "modules that listing and describing the detector must not import (adcore.testing)",
    "xfail_checks": "{check_name: reason}: conformance checks this detector is known to fail",
    "slow": "True marks this detector's conformance cases pytest.mark.slow",
    "test_params": "{param: value}: cheaper parameters the conformance kit builds the detector with",
}

#: Every port, in the order ``adcore plugins`` shows them.
PORTS: tuple[Port, ...] = (
    Port("register_detectors", "detector", "algorithm", {**COMMON_KEYWORDS, **_DETECTOR_KEYWORDS}),
    Port("register_storage", "storage", "model-store backend", dict(COMMON_KEYWORDS), schemes=True),
    Port("register_monitors", "monitor", "monitor", dict(COMMON_KEYWORDS)),
    Port(
        "register_messaging",
        "messaging",
        "stream transport",
        {
            **COMMON_KEYWORDS,
            "kind": '"source", "sink" or "source+sink" (the default): what the scheme can be used as',
        },
        schemes=True,
    ),
    Port(
        "register_event_subscribers",
        "subscriber",
        "event subscriber",
        {
            **COMMON_KEYWORDS,
            "types": "event types the callback receives (one or several of "
            "detection.completed, anomaly.detected, drift.detected, model.retrained, model.refit_failed, "
            "model.saved, bench.completed, job.queued, job.started, job.finished, job.failed); "
            "empty means all",
        },
    ),
    Port("register_executors", "executor", "batch executor", dict(COMMON_KEYWORDS), schemes=True),
)


def port(kind: str) -> Port:
    """The port whose registry is called ``kind`` (``detector``, ``storage``...)."""
    for candidate in PORTS:
        if candidate.kind == kind:
            return candidate
    raise KeyError(f"no port {kind!r}; ports: {', '.join(p.kind for p in PORTS)}")


@hookspec
def register_detectors(register: Register) -> None:
    """Register anomaly detectors.

    Called once per process when the plugin host collects detectors (the first time
    an algorithm is listed or built).

    :param register: ``register(name, factory, *, summary="", params=None, tags=(),
        needs=(), install=None, heavy_modules=(), xfail_checks={}, slow=False,
        test_params={}, extra={})``. ``factory(**params)`` must return an object with
        ``fit(X, y=None)`` and ``decision_function(X)`` (higher = more anomalous); the
        core wraps it with thresholds, labels and validation. ``summary`` is one line for
        ``adcore algos``. ``params`` is a pydantic model (or ``"module:Model"``) or a list
        of dicts describing the parameters; when omitted it is derived from the factory's
        signature. ``tags`` are free-form labels. ``needs`` names optional packages the
        detector imports, so a missing one gives a clean "pip install" error; ``install``
        is what to install instead when that is not the needs themselves. For the
        conformance kit (``adcore.testing``): ``heavy_modules`` must not be imported by
        listing, ``xfail_checks`` maps checks known to fail to the reason, ``slow`` marks
        the cases slow, ``test_params`` are cheaper parameters to build it with.
        ``extra`` is a dict of the plugin's own metadata. Any other keyword is refused.
    """


@hookspec
def register_storage(register: Register) -> None:
    """Register model-store backends.

    Called when a model store is opened (``--store URL``, ``adcore models``, the server).

    :param register: ``register(scheme, factory, *, summary="", needs=(), install=None,
        extra={})``. ``scheme`` is the URL scheme the backend serves (``file``,
        ``postgresql``); ``factory(url: str)`` returns an ``adcore.services.registry.ModelStore``.
        ``summary`` is one line for listings; ``needs`` names optional packages the
        backend imports and ``install`` what to pip install for them (``"adcore[postgres]"``);
        ``extra`` is a dict of the plugin's own metadata. Any other keyword is refused.
    """


@hookspec
def register_monitors(register: Register) -> None:
    """Register monitors: sinks for metrics and events.

    Called when a service starts monitoring (``adcore stream --monitor NAME``, the server).

    :param register: ``register(name, factory, *, summary="", needs=(), install=None,
        extra={})``. ``factory(**options)`` returns an object with ``record(event)``.
        ``summary`` is one line for listings; ``needs`` names optional packages the monitor
        imports and ``install`` what to pip install for them; ``extra`` is a dict of the
        plugin's own metadata. Any other keyword is refused.
    """


@hookspec
def register_messaging(register: Register) -> None:
    """Register stream sources and sinks.

    Called when a stream is opened (``--source URL``, ``--sink URL``, ``--events URL``).

    :param register: ``register(scheme, factory, *, kind="source+sink", summary="",
        needs=(), install=None, extra={})``. ``scheme`` is the URL scheme (``stdio``,
        ``file``, ``kafka``); ``kind`` is ``source``, ``sink`` or ``source+sink``; the
        factory is called as ``factory(url, kind="source"|"sink")``. A source has
        ``poll(max_records, timeout)`` (a list of ``bytes``/``str``/``adcore.messaging.Message``,
        ``[]`` on timeout, ``None`` at the end), ``commit()`` (called after each batch's
        output is flushed: commit offsets there for at-least-once delivery) and ``close()``;
        a plain iterable of lines is accepted too. A sink has ``write(value: bytes,
        metadata=None)``, ``flush()`` and ``close()``. See ``adcore.messaging``. ``summary``,
        ``needs``, ``install`` and ``extra`` mean what they mean for every port. Any other
        keyword is refused.
    """


@hookspec
def register_event_subscribers(register: Register) -> None:
    """Subscribe to the events that streams and the server publish.

    Called when a stream starts (``adcore stream``, ``adcore.open_stream``), when ``adcore
    serve`` or ``adcore worker`` starts (the jobs' events), and by ``adcore fit`` when it saves
    a model. Each subscriber receives every event of the types it asked for: in a stream,
    after the micro-batch that caused it was written and flushed, on the stream's thread
    (return quickly; hand slow work to a queue); in the server, after the response body was
    built, on one background thread, in order; in ``adcore worker``, in the job's process. An exception is
    reported once (on stderr, or in the server log) and never stops a stream nor fails a request.

    :param register: ``register(name, callback, *, types=(), summary="", needs=(),
        install=None, extra={})``. ``callback(event)`` receives an ``adcore.domain.events.Event``
        (``event.type``, ``event.to_dict()``), or is a lazy ``"module:attr"`` string.
        ``types`` limits it to some of ``detection.completed``, ``anomaly.detected``,
        ``drift.detected``, ``model.retrained``, ``model.refit_failed``, ``model.saved``,
        ``bench.completed``, ``job.queued``, ``job.started``, ``job.finished``, ``job.failed``
        (``adcore.domain.events.EVENT_TYPES``); empty means all (an
        unknown type refuses the registration). ``summary``, ``needs``, ``install`` and
        ``extra`` mean what they mean for every port. Any other keyword is refused.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register batch executors: what runs ``adcore score``/``fit``/``run`` over files.

    Called when a command names an executor (``--executor NAME`` or ``NAME://ADDRESS``,
    default ``$ADCORE_EXECUTOR``, else ``local``).

    :param register: ``register(name, factory, *, summary="", needs=(), install=None,
        extra={})``. ``name`` is the executor's name and the scheme of its address
        (``dask`` serves ``--executor dask`` and ``dask://scheduler:8786``); ``factory(text)``
        receives the ``--executor`` text as given and returns an
        ``adcore.services.executors.Executor``: ``score(ScoreJob, progress)`` returns the
        summary, ``fit(FitJob, progress)`` stores the model through
        ``adcore.services.executors.fit_and_save`` and returns a ``FitOutcome``, ``close()``
        releases what it started. Scores must equal the ``local`` executor's for the same
        model and rows. ``summary``, ``needs``, ``install`` and ``extra`` mean what they
        mean for every port. Any other keyword is refused.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add sub-commands to the ``adcore`` CLI.

    Called once when the CLI starts, after the built-in commands exist (and by
    ``adcore plugins``, on a throwaway app, to show a hook that raises).

    :param cli: the root ``typer.Typer`` app; add commands with ``@cli.command()`` or
        groups with ``cli.add_typer(...)``.
    """


@hookspec
def register_routes(app: Any) -> None:
    """Add HTTP routes to ``adcore serve`` (needs the ``server`` extra).

    Called once per plugin when the server app is created, after the built-in routes
    exist (and by ``adcore plugins``, on a throwaway router, when FastAPI is installed).
    A hook that raises is logged as a warning by the server, which starts without any of
    that plugin's routes.

    :param app: a fresh ``fastapi.APIRouter`` for this plugin, included in the server's app
        when the hook returns: add routes with ``@app.get("/v1/myplugin/...")`` (prefix
        paths with your plugin's name). They get the server's API-key check, rate limit
        and error shape, like the built-in ``/v1`` routes. Run CPU-heavy work off the
        event loop (``fastapi.concurrency.run_in_threadpool``).
    """
