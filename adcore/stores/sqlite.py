"""The embedded model store: a SQLite index plus artifact files in one directory.

Layout of a store directory (``$ADCORE_HOME/models`` by default)::

    index.sqlite          the index (WAL mode): tables ``models`` and ``model_names``
    artifacts/NAME/*.pkl  one pickle per version, written atomically

A save writes the artifact first (temp file, fsync, rename), then inserts the row in one
``BEGIN IMMEDIATE`` transaction that also allocates the version. ``BEGIN IMMEDIATE`` takes
SQLite's write lock up front, so two processes saving the same name queue instead of
both reading the same "last version"; a busy database is waited for and retried.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from adcore.errors import StoreError
from adcore.services.registry import ModelRecord, model_not_found, redact_url, utc_now
from adcore.stores.artifacts import LocalArtifacts
from adcore.stores.rows import COLUMNS, models_table_ddl, names_table_ddl, record_to_row, row_to_record

INDEX_FILE = "index.sqlite"
BUSY_TIMEOUT_S = 30.0
RETRIES = 5


def path_from_url(url: str) -> Path:
    """``file:///abs/dir``, ``file://~/dir`` or a plain path -> the store directory."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        raw = unquote((parsed.netloc or "") + parsed.path)
        return Path(raw).expanduser()
    return Path(url).expanduser()


class SQLiteStore:
    """A :class:`~adcore.services.registry.ModelStore` in one local directory; safe across processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = path_from_url(url)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the model store {self.root}: {exc.strerror or exc}") from exc
        self.artifacts = LocalArtifacts(self.root / "artifacts")
        self._conn = self._connect()
        self._ensure_schema()

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.root / INDEX_FILE, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            conn.execute("PRAGMA synchronous=FULL")  # a committed model survives a power cut
            return conn
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the model index {self.root / INDEX_FILE}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first statement."""
        for attempt in range(RETRIES):
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreError(f"model index {self.root / INDEX_FILE}: {exc}") from exc
                if attempt == RETRIES - 1:
                    raise StoreError(
                        f"model index {self.root / INDEX_FILE} stayed locked; try again"
                    ) from exc
                time.sleep(0.05 * 2**attempt)
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _ensure_schema(self) -> None:
        """Create the tables once; later opens (and read-only commands) skip the write lock."""
        present = self._conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('models', 'model_names')"
        ).fetchone()[0]
        if present == 2:
            return
        with self._write() as conn:
            conn.execute(models_table_ddl("models"))
            conn.execute(names_table_ddl("model_names"))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({redact_url(self.url)!r})"

    # --------------------------------------------------------------------- API
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

    def get(self, name: str, version: int | None = None) -> ModelRecord:
        if version is None:
            row = self._conn.execute(
                "SELECT * FROM models WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT * FROM models WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        if row is None:
            raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
        return row_to_record(row)

    def list(self, name: str | None = None) -> list[ModelRecord]:
        if name is None:
            rows = self._conn.execute("SELECT * FROM models ORDER BY name, version").fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM models WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [row_to_record(r) for r in rows]

    def read_artifact(self, record: ModelRecord) -> bytes:
        return self.artifacts.get(record.artifact)

    def remove(self, name: str, version: int | None = None) -> list[ModelRecord]:
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


def open_store(url: str) -> SQLiteStore:
    """The ``register_storage`` factory for ``file://`` URLs and plain paths."""
    return SQLiteStore(url)
