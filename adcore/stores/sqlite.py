"""The embedded model store: a SQLite index plus artifact files in one directory.

Layout of a store directory (``$ADCORE_HOME/models`` by default)::

    index.sqlite          the index (rollback journal): tables ``models`` and ``model_names``
    artifacts/NAME/*.pkl  one pickle per version, written atomically

A save writes the artifact first (temp file, fsync, rename), then inserts the row in one
``BEGIN IMMEDIATE`` transaction that also allocates the version. ``BEGIN IMMEDIATE`` takes
SQLite's write lock up front, so two processes saving the same name queue instead of
both reading the same "last version"; a busy database is waited for and retried.

Reads never write. Every store opens the index read-only (``mode=ro``) and opens a writing
connection only for its first ``add``/``remove``, so listing and scoring work on a store
mounted read-only. The index uses a rollback journal, not WAL: a WAL reader creates
``-wal``/``-shm`` files, which a read-only directory cannot hold.

An index that disappears or is replaced under a running process is noticed, never
silently recreated: the store remembers the file's identity (device, inode) and checks it
(one ``stat``) before every operation, and a process that has used an index in a directory
refuses a different one there. A directory holding artifacts but no index is refused too:
an empty index over existing models would reuse their version numbers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from adcore.errors import StoreError
from adcore.services.registry import (
    ModelRecord,
    StoreNotFoundError,
    StoreUnavailableError,
    model_not_found,
    redact_url,
    refuse_alias,
    utc_now,
)
from adcore.stores.artifacts import LocalArtifacts
from adcore.stores.rows import COLUMNS, models_table_ddl, names_table_ddl, record_to_row, row_to_record

INDEX_FILE = "index.sqlite"
BUSY_TIMEOUT_S = 30.0
RETRIES = 5
JOURNAL_MODE = "delete"  # readers of a rollback-journal database create no file

Identity = tuple[int, int]
#: store directory -> identity of the index this process first used there (see the module docs)
_SEEN: dict[Path, Identity] = {}
_SEEN_LOCK = threading.Lock()
_T = TypeVar("_T")


def file_identity(path: Path) -> Identity | None:
    """(st_dev, st_ino) of ``path``, or ``None`` when it does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read the model index {path}: {exc.strerror or exc}") from exc
    return info.st_dev, info.st_ino


def index_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A SQLite failure as a store error naming the index (a corrupt one says so)."""
    text = str(exc)
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return StoreUnavailableError(
            f"the model index {path} is corrupt ({text}); restore it from a backup"
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"the model store {path.parent} is read-only ({text}): models can be listed and scored, not saved"
        )
    return StoreError(f"model index {path}: {text}")


def guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Check the index is still the one opened, and turn SQLite's errors into StoreError."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> _T:
        self.check_index()
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise index_error(self.index, exc) from exc

    return wrapper


def path_from_url(url: str) -> Path:
    """``file:///abs/dir``, ``file://~/dir`` or a plain path -> the store directory."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        raw = unquote((parsed.netloc or "") + parsed.path)
        return Path(raw).expanduser()
    return Path(url).expanduser()


class SQLiteStore:
    """A :class:`~adcore.services.registry.ModelStore` in one local directory; safe across processes."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.root = path_from_url(url)
        self.index = self.root / INDEX_FILE
        self.artifacts = LocalArtifacts(self.root / "artifacts")
        self._writer: sqlite3.Connection | None = None
        if file_identity(self.index) is None:
            if not create and not self._has_artifacts():  # a read never makes a store where one is missing
                raise self._not_found()  # (artifacts without an index: _create refuses, naming that)
            self._create()
        self._identity = self._remember_identity()
        if Path(f"{self.index}-journal").exists():
            self._recover_journal()
        try:
            self._reader = self._connect(read_only=True)
            self._ensure_schema()
        except sqlite3.Error as exc:
            raise index_error(self.index, exc) from exc

    # ------------------------------------------------------------------ plumbing
    def _connect(self, *, read_only: bool, create: bool = False) -> sqlite3.Connection:
        """A connection to the index: ``mode=ro`` never writes; a writer never creates one by accident."""
        mode = "ro" if read_only else ("rwc" if create else "rw")
        conn = sqlite3.connect(
            f"{self.index.absolute().as_uri()}?mode={mode}",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
        )
        conn.row_factory = sqlite3.Row
        if not read_only:
            conn.execute("PRAGMA synchronous=FULL")  # a committed model survives a power cut
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != JOURNAL_MODE:
                with contextlib.suppress(sqlite3.OperationalError):  # a store another process holds in WAL
                    conn.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        """The writing connection, opened on the first write (reads use ``_reader`` and never need it)."""
        if self._writer is None:
            self._writer = self._connect(read_only=False)
        return self._writer

    @_conn.setter
    def _conn(self, conn: sqlite3.Connection) -> None:  # tests/crash_points.py wraps it
        self._writer = conn

    def _recover_journal(self) -> None:
        """Let a writer roll back what a killed process left half-written (a read-only one cannot)."""
        if os.access(self.root, os.W_OK):
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def _create(self) -> None:
        """A new, empty index; refused where models were indexed before (see the module docs)."""
        with _SEEN_LOCK:
            used_here = self.root.absolute() in _SEEN
            if used_here and not self.root.exists():  # the whole store was removed: a new one may start
                del _SEEN[self.root.absolute()]
                used_here = False
        if used_here:
            raise StoreUnavailableError(
                f"the model index {self.index} was deleted while this process was using it; "
                "restore it (or restart to start an empty store)"
            )
        if self._has_artifacts():
            raise StoreUnavailableError(
                f"the model store {self.root} holds model artifacts but no index ({INDEX_FILE} was deleted "
                "or moved); refusing to create an empty index over them: restore the index from a backup"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the model store {self.root}: {exc.strerror or exc}") from exc
        try:
            self._writer = self._connect(read_only=False, create=True)
        except sqlite3.Error as exc:
            raise index_error(self.index, exc) from exc

    def _not_found(self) -> StoreNotFoundError:
        """The error of a read naming a store that does not exist: it says which part is missing."""
        what = "has no model index" if self.root.is_dir() else "does not exist"
        return StoreNotFoundError(
            f"no model store at {self.root}: the directory {what} (check --store or ADCORE_STORE; "
            "'adcore fit --model NAME' creates a store)"
        )

    def _has_artifacts(self) -> bool:
        return any(path.is_file() for path in self.artifacts.root.glob("*/*.pkl"))

    def _remember_identity(self) -> Identity:
        """The index's identity, which must be the one this process first used in this directory."""
        current = file_identity(self.index)
        if current is None:
            raise StoreUnavailableError(f"the model index {self.index} disappeared while it was opened")
        with _SEEN_LOCK:
            first = _SEEN.setdefault(self.root.absolute(), current)
        if first != current:
            raise StoreUnavailableError(
                f"the model index {self.index} was replaced by another file while this process was "
                "using it; refusing to use it (restart to accept the new index)"
            )
        return current

    def check_index(self) -> None:
        """Raise StoreUnavailableError when the index file is gone or is no longer the one opened.

        One ``stat``: cheap enough before every operation, and what keeps a write from going
        to a deleted file (or a listing from describing one) without anyone noticing.
        """
        current = file_identity(self.index)
        if current == self._identity:
            return
        what = "was deleted" if current is None else "was replaced by another file"
        raise StoreUnavailableError(
            f"the model index {self.index} {what} while this process had it open; refusing to use it"
        )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first statement."""
        conn = self._conn
        for attempt in range(RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise index_error(self.index, exc) from exc
                if attempt == RETRIES - 1:
                    raise StoreError(f"model index {self.index} stayed locked; try again") from exc
                time.sleep(0.05 * 2**attempt)
        try:
            self.check_index()  # under the lock: nothing can swap the file between check and write
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _ensure_schema(self) -> None:
        """Create the tables once; later opens (and read-only commands) only read."""
        present = self._reader.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('models', 'model_names')"
        ).fetchone()[0]
        if present == 2:
            return
        with self._write() as conn:
            conn.execute(models_table_ddl("models"))
            conn.execute(names_table_ddl("model_names"))

    def close(self) -> None:
        self._reader.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({redact_url(self.url)!r})"

    # --------------------------------------------------------------------- API
    @guarded
    def add(self, record: ModelRecord, artifact: bytes) -> ModelRecord:
        key = self.artifacts.put(artifact, record.sha256, record.name)  # durable before the row
        try:
            with self._write() as conn:
                version = conn.execute(
                    "INSERT INTO model_names (name, last_version) VALUES (?, 1) "
                    "ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1 RETURNING last_version",
                    (record.name,),
                ).fetchone()[0]
                stored = record.replace(version=int(version), artifact=key, created_at=utc_now())
                row = record_to_row(stored)
                conn.execute(
                    f"INSERT INTO models ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    [row[c] for c in COLUMNS],
                )
        except BaseException:
            self.artifacts.delete(key)  # nothing points at it
            raise
        return stored

    @guarded
    def get(self, name: str, version: int | str | None = None) -> ModelRecord:
        version = refuse_alias(version, "the file store")
        if version is None:
            row = self._reader.execute(
                "SELECT * FROM models WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = self._reader.execute(
                "SELECT * FROM models WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        if row is None:
            raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
        return row_to_record(row)

    @guarded
    def list(self, name: str | None = None) -> list[ModelRecord]:
        if name is None:
            rows = self._reader.execute("SELECT * FROM models ORDER BY name, version").fetchall()
        else:
            rows = self._reader.execute(
                "SELECT * FROM models WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [row_to_record(r) for r in rows]

    @guarded
    def read_artifact(self, record: ModelRecord) -> bytes:
        return self.artifacts.get(record.artifact)

    @guarded
    def remove(self, name: str, version: int | str | None = None) -> list[ModelRecord]:
        version = refuse_alias(version, "the file store")
        with self._write() as conn:
            if version is None:
                rows = conn.execute(
                    "SELECT * FROM models WHERE name = ? ORDER BY version", (name,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM models WHERE name = ? AND version = ?", (name, version)
                ).fetchall()
            if not rows:
                versions = [r[0] for r in conn.execute("SELECT version FROM models WHERE name = ?", (name,))]
                raise model_not_found(name, version, versions, self.url)
            removed = [row_to_record(r) for r in rows]
            conn.executemany(
                "DELETE FROM models WHERE name = ? AND version = ?", [(r.name, r.version) for r in removed]
            )
        for record in removed:  # after the commit: a crash here leaves a stray file, never a dangling row
            self.artifacts.delete(record.artifact)
        return removed


def open_store(url: str, *, create: bool = True) -> SQLiteStore:
    """The ``register_storage`` factory for ``file://`` URLs and plain paths.

    ``create=False`` (reads, see :func:`adcore.services.registry.open_store`) refuses a missing store.
    """
    return SQLiteStore(url, create=create)
