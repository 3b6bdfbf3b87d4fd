"""``adcore worker``: run queued jobs from Redis, taking the priorities in the order given."""

from __future__ import annotations

import typer

from adcore.cli.text import help_paragraphs

QUEUE = typer.Option(None, "--queue", help="Redis URL of the job queue (default: $ADCORE_QUEUE).")
QUEUES = typer.Option("high,normal,low", "--queues", help="Priorities to take, first ones first.")
EXECUTOR = typer.Option(
    None, "--executor", help="Executor for jobs that name none (default: $ADCORE_EXECUTOR, else local)."
)
STORE = typer.Option(None, "--store", help="Model store (default: $ADCORE_STORE, else the embedded one).")
HEARTBEAT = typer.Option(
    10, "--heartbeat", min=1, help="Seconds between heartbeats; a dead worker's job is rerun after three."
)
BURST = typer.Option(False, "--burst", help="Stop when the queues are empty.")
NAME = typer.Option(None, "--name", help="Worker name (default: HOST.PID).")
MONITOR = typer.Option(None, "--monitor", help="Monitor receiving the job events, e.g. jsonlog (repeatable).")


def register(app: typer.Typer) -> None:
    @app.command("worker")
    @help_paragraphs
    def worker_cmd(
        queue: str = QUEUE,
        queues: str = QUEUES,
        executor: str = EXECUTOR,
        store: str = STORE,
        heartbeat: int = HEARTBEAT,
        burst: bool = BURST,
        name: str = NAME,
        monitor: list[str] = MONITOR,
    ) -> None:
        """Run jobs queued by 'adcore serve --queue' (POST /v1/jobs), one at a time.

        Start as many as needed, on any machine that reaches Redis, the model store and the
        jobs' files. A worker SIGKILLed mid-job loses nothing: another worker runs the job
        again after three missed heartbeats. A worker waits out a Redis outage (or a Redis
        not up yet) and goes on by itself. See docs/jobs.md.
        """
        import os

        from adcore.errors import MissingDependencyError, ParameterError
        from adcore.services.jobs.queue import queue_url

        url = queue_url(queue)
        if url is None:
            raise ParameterError("adcore worker needs --queue redis://HOST:PORT/DB (or ADCORE_QUEUE)")
        try:
            import redis  # noqa: F401
            import rq  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                f"adcore worker needs the jobs extra: pip install 'adcore[jobs]' (missing: {exc.name})"
            ) from None
        from adcore.services.jobs.rq_worker import build_worker, parse_priorities, work_until_stopped

        priorities = parse_priorities(queues)
        if store:
            os.environ["ADCORE_STORE"] = store  # the work horses inherit it
        publish = _event_publisher(list(monitor or ()))
        import socket

        name = name or f"{socket.gethostname()}.{os.getpid()}"

        def make_worker() -> object:
            return build_worker(
                url, priorities, executor=executor, heartbeat=heartbeat, name=name, publish=publish
            )

        typer.echo(f"adcore worker {name}: queues {', '.join(priorities)}", err=True)
        work_until_stopped(make_worker, name, burst=burst, report=lambda line: typer.echo(line, err=True))


def _event_publisher(monitors: list[str]) -> object:
    """Deliver job events to ``--monitor``s and plugin subscribers, or None when nobody listens."""
    from adcore.domain.events import EVENT_TYPES, EventBus
    from adcore.services.events import load_monitors, load_subscribers

    def report(message: str) -> None:
        typer.echo(message, err=True)

    bus = EventBus(
        monitors=load_monitors(monitors), subscribers=load_subscribers(on_error=report), on_error=report
    )
    if not any(bus.wants(t) for t in EVENT_TYPES):
        return None

    def publish(events: object) -> None:
        for event in events:  # type: ignore[attr-defined]
            bus.publish(event)
        bus.flush()

    return publish
