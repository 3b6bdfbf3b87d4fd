"""Where CLI output goes: data and JSON to stdout, messages and tables for people to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def stdout_console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False)


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=False)


def print_json(payload: Any) -> None:
    """Plain JSON on stdout (no colour codes), so it pipes into jq."""
    from adcore.io.jsonio import jsonable

    sys.stdout.write(json.dumps(jsonable(payload), indent=2) + "\n")  # NaN would not be JSON
    sys.stdout.flush()
