"""Run the adcore CLI with a pause just before the model store commits a new version.

Crash-injection for tests/test_registry.py: the test SIGKILLs this process while it
sleeps, at the most fragile moment of a save (artifact written, index rows inserted, the
transaction not yet committed), and then checks that the store is still consistent. The
pause lives here, in test code, by wrapping the store's database connection; the stores
themselves carry no test hook.

Usage: ``python tests/crash_points.py SECONDS adcore-args...``
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

MARKER = "adcore-test: paused before commit"


def _pause(seconds: float) -> None:
    sys.stderr.write(MARKER + "\n")
    sys.stderr.flush()
    time.sleep(seconds)


class _PausingSQLite:
    """A sqlite3 connection whose ``COMMIT`` statement waits first."""

    def __init__(self, conn: Any, seconds: float) -> None:
        self._conn, self._seconds = conn, seconds

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.strip().upper() == "COMMIT":
            _pause(self._seconds)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _PausingPostgres:
    """A psycopg connection whose outermost ``transaction()`` block waits before committing."""

    def __init__(self, conn: Any, seconds: float) -> None:
        self._conn, self._seconds = conn, seconds

    @contextlib.contextmanager
    def transaction(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with self._conn.transaction(*args, **kwargs) as tx:
            yield tx
            _pause(self._seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _wrap_add(store_class: type, proxy: type, seconds: float) -> None:
    original = store_class.add

    def add(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._conn = proxy(self._conn, seconds)
        return original(self, *args, **kwargs)

    store_class.add = add


def main(argv: list[str]) -> int:
    seconds = float(argv[0])
    from adcore.stores.sqlite import SQLiteStore

    _wrap_add(SQLiteStore, _PausingSQLite, seconds)
    try:
        from adcore.stores.postgres import PostgresStore
    except ImportError:  # psycopg not installed: only the embedded store can be tested
        pass
    else:
        _wrap_add(PostgresStore, _PausingPostgres, seconds)
    from adcore.cli.main import run_cli

    return run_cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
