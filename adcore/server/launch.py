"""Run the app under uvicorn: in this process, or in ``--workers N`` processes.

With one worker the app object is handed to uvicorn directly. With several, uvicorn
imports :func:`adcore.server.app.app_from_env` in each worker process, so the settings
go through the environment (the API key stays in ``ADCORE_API_KEY``).
"""

from __future__ import annotations

import os

from adcore.server.settings import SETTINGS_ENV, ServerSettings


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
