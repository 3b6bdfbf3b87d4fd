"""Run the app under uvicorn: in this process, or in ``--workers N`` processes.

With one worker the app object is handed to uvicorn directly. With several, uvicorn
imports :func:`adcore.server.app.app_from_env` in each worker process, so the settings
go through the environment (the API key stays in ``ADCORE_API_KEY``).
"""

from __future__ import annotations

import os

from adcore.errors import ParameterError
from adcore.server.settings import API_KEY_ENV, SETTINGS_ENV, ServerSettings


def check_bind(settings: ServerSettings, *, insecure_no_key: bool = False) -> str | None:
    """Refuse to serve a non-loopback address without an API key; return a warning when forced.

    Without a key anyone who can reach the address can fit, score and delete models, so
    that takes an explicit ``--insecure-no-key`` (for a trusted network or a proxy that
    authenticates). Raises :class:`ParameterError` (exit code 2) otherwise.
    """
    if settings.api_key is not None or settings.is_loopback:
        return None
    if not insecure_no_key:
        raise ParameterError(
            f"refusing to bind {settings.host} without an API key: set {API_KEY_ENV}, bind a loopback "
            "address (127.0.0.1, ::1, localhost), or pass --insecure-no-key to serve it unauthenticated"
        )
    return (
        f"warning: serving {settings.host} without {API_KEY_ENV} (--insecure-no-key): anyone who can "
        "reach this address can fit, score and delete models"
    )


def run_server(settings: ServerSettings, *, log_level: str = "info") -> None:
    import uvicorn

    _log_to_stderr(log_level)

    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "proxy_headers": False,  # the rate limit keys on the peer address: never trust X-Forwarded-For
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        from adcore.server.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run("adcore.server.app:app_from_env", factory=True, workers=settings.workers, **options)


def _log_to_stderr(level: str) -> None:
    """Show the server's own warnings (broken plugins, 500s with their traceback) next to uvicorn's."""
    import logging
    import sys

    logger = logging.getLogger("adcore.server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     adcore: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
