"""``adcore serve``: the REST API, /metrics and the dashboard under uvicorn (the server extra).

FastAPI and uvicorn are imported only when the command runs, so every other command
starts as fast without the extra as with it.
"""

from __future__ import annotations

import typer

from adcore.cli.text import help_paragraphs

EXTRA_HINT = "adcore serve needs the server extra: pip install 'adcore[server]'"


def _require_server_extra() -> None:
    """Fail with exit code 2 and the pip command when fastapi, uvicorn or prometheus-client is missing."""
    from adcore.errors import MissingDependencyError

    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"{EXTRA_HINT} (missing: {exc.name or exc})") from None


HOST = typer.Option(
    "127.0.0.1", "--host", help="Address to bind; loopback by default (any other needs ADCORE_API_KEY)."
)
INSECURE_NO_KEY = typer.Option(
    False, "--insecure-no-key", help="Allow a non-loopback --host without ADCORE_API_KEY (no auth at all)."
)
PORT = typer.Option(8001, "--port", help="TCP port.")
WORKERS = typer.Option(1, "--workers", min=1, help="Server processes (each keeps its own dashboard ring).")
STORE = typer.Option(None, "--store", help="Model store URL (default: $ADCORE_STORE, else the embedded).")
MAX_BODY_MB = typer.Option(10.0, "--max-body-mb", help="Largest request body in MB (413 above).")
MAX_ROWS = typer.Option(100_000, "--max-rows", help="Most rows per request (413 above).")
MAX_FEATURES = typer.Option(1_000, "--max-features", help="Most features per row (413 above).")
MAX_EXPLAIN_ROWS = typer.Option(1_000, "--max-explain-rows", help="Most rows per explain request.")
RATE_LIMIT = typer.Option(50.0, "--rate-limit", help="Requests per second per client (429 above); 0: off.")
BURST = typer.Option(100, "--burst", help="Requests a client may send at once before the rate applies.")
CONCURRENCY = typer.Option(0, "--concurrency", help="CPU-heavy calls run at once (default: the CPU count).")
MONITOR = typer.Option(None, "--monitor", help="Monitor receiving events, e.g. jsonlog (repeatable).")
QUEUE = typer.Option(
    None,
    "--queue",
    help="Redis URL for /v1/jobs, run by 'adcore worker' (default: $ADCORE_QUEUE; none: in-process, "
    "lost on restart).",
)
LOG_LEVEL = typer.Option("info", "--log-level", help="uvicorn log level: critical..debug.")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @help_paragraphs
    def serve_cmd(
        host: str = HOST,
        port: int = PORT,
        workers: int = WORKERS,
        store: str = STORE,
        max_body_mb: float = MAX_BODY_MB,
        max_rows: int = MAX_ROWS,
        max_features: int = MAX_FEATURES,
        max_explain_rows: int = MAX_EXPLAIN_ROWS,
        rate_limit: float = RATE_LIMIT,
        burst: int = BURST,
        concurrency: int = CONCURRENCY,
        monitor: list[str] = MONITOR,
        queue: str = QUEUE,
        log_level: str = LOG_LEVEL,
        insecure_no_key: bool = INSECURE_NO_KEY,
    ) -> None:
        """Serve the REST API (/v1/...), /metrics, health probes and the dashboard at /.

        Set ADCORE_API_KEY to require 'Authorization: Bearer <key>' on every endpoint but
        /health/liveness and the dashboard's files. Without a key, only a loopback --host is
        served unless you pass --insecure-no-key. See docs/server.md.
        """
        from adcore.server.settings import ServerSettings
        from adcore.services.jobs.queue import queue_url

        settings = ServerSettings.from_env().replace(
            host=host,
            port=port,
            workers=workers,
            store=store,
            max_body_mb=max_body_mb,
            max_rows=max_rows,
            max_features=max_features,
            max_explain_rows=max_explain_rows,
            rate_limit=rate_limit,
            rate_burst=burst,
            monitors=tuple(monitor or ()),
            queue=queue_url(queue),
            **({"concurrency": concurrency} if concurrency > 0 else {}),
        )
        _require_server_extra()
        from adcore.server.launch import check_bind, run_server

        warning = check_bind(settings, insecure_no_key=insecure_no_key)
        if warning:
            typer.echo(warning, err=True)
        auth = "API key required" if settings.api_key else "no API key"
        typer.echo(f"adcore serve: dashboard at http://{host}:{port}/ ({auth}, workers: {workers})", err=True)
        run_server(settings, log_level=log_level)
