"""Where CLI output goes: data and JSON to stdout, messages and tables for people to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def console(**options: Any) -> Any:
    """A rich Console whose closed pipe is an ordinary ``BrokenPipeError``.

    rich answers a closed pipe with ``SystemExit(1)``, which reads as a failure; a reader that
    stops early (``adcore run ... 2>&1 | head``) is no error, and ``cli/main.py`` turns the
    ``BrokenPipeError`` into a quiet exit 0, in one place.
    """
    import errno

    from rich.console import Console

    class _PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")

    return _PipeConsole(**options)


def stdout_console() -> Any:
    return console(soft_wrap=False)


def stderr_console() -> Any:
    return console(stderr=True, soft_wrap=False)


def print_json(payload: Any) -> None:
    """Plain JSON on stdout (no colour codes), so it pipes into jq."""
    from adcore.io.jsonio import jsonable

    sys.stdout.write(json.dumps(jsonable(payload), indent=2) + "\n")  # NaN would not be JSON
    sys.stdout.flush()
