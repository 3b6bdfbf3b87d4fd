"""A model store for several machines: a PostgreSQL index, artifacts in S3 (or a shared directory).

URL: ``postgresql://USER[:PASSWORD]@HOST:PORT/DB?artifacts=s3://BUCKET/PREFIX`` (other
query parameters such as ``sslmode`` go to libpq unchanged; ``artifacts=file:///dir``
uses a directory every machine mounts). The S3 endpoint and credentials come from the
standard AWS environment variables (see :class:`~adcore.stores.artifacts.S3Artifacts`).

Registered by the core exactly as a third-party backend would be: lazily, with
``needs=["psycopg", "boto3"]``, installed by ``pip install 'adcore[postgres]'``.

Guarantees, as for the embedded store:

- the artifact is uploaded first, under a content-addressed key; then the index row is
  inserted in one transaction, so a crash leaves at most an unreferenced object;
- versions come from ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on a names table,
  which row-locks the name: concurrent saves get distinct, consecutive versions, never a
  reused one; the (name, version) primary key backs this up;
- two versions may share one object (identical bytes), so the object is deleted only when
  no row references it, under an advisory lock on its key that a concurrent save of the
  same bytes also takes (and then re-uploads if the object went away).

Outages (:mod:`adcore.services.resilience`): a query that fails because the server went
away (refused or dropped connection, admin shutdown, a failover) drops the connection,
reconnects and retries with jittered backoff; repeated failures open the ``postgres``
circuit breaker. Either way the caller gets :class:`~adcore.errors.StoreUnavailableError`
(503 with ``Retry-After`` over HTTP). Every operation is one transaction, so a retry
repeats it whole; the one ambiguous case, a save whose COMMIT succeeded but whose answer
was lost, can leave one extra version of the same bytes, never a lost or half-written one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3  # noqa: F401  - imported here so a missing package is reported when the store opens
import psycopg
from psycopg.rows import dict_row

from adcore.errors import StoreError, StoreUnavailableError
from adcore.services import resilience
from adcore.services.registry import ModelRecord, model_not_found, redact_url, refuse_alias, utc_now
from adcore.stores.artifacts import ArtifactStore, open_artifacts
from adcore.stores.rows import COLUMNS, models_table_ddl, names_table_ddl, record_to_row, row_to_record

T = TypeVar("T")

MODELS = "adcore_models"
NAMES = "adcore_model_names"
_SCHEMA_LOCK = 0x0AD0C03E  # advisory lock id serialising CREATE TABLE IF NOT EXISTS


def split_url(url: str) -> tuple[str, str]:
    """Separate libpq's connection URL from the ``artifacts=`` location."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    artifacts = [v for k, v in query if k == "artifacts"]
    if not artifacts or not artifacts[0]:
        raise StoreError(
            f"the store URL {redact_url(url)} names no artifact location: add "
            "?artifacts=s3://bucket/prefix (or ?artifacts=file:///shared/dir)"
        )
    rest = urlencode([(k, v) for k, v in query if k != "artifacts"])
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), artifacts[0]


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for an artifact key."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class PostgresStore:
    """A :class:`~adcore.services.registry.ModelStore` shared by every machine that reaches the database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conninfo, artifacts_url = split_url(url)
        self.artifacts: ArtifactStore = open_artifacts(artifacts_url)
        self.dependency = resilience.dependency("postgres", _server_of(self._conninfo), is_transient)
        self._conn: psycopg.Connection | None = None
        self._run("connecting to the model index", self._ensure_schema)

    def _connection(self) -> psycopg.Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._discard()
            try:
                conn = psycopg.connect(
                    self._conninfo, autocommit=True, row_factory=dict_row, connect_timeout=5
                )
            except psycopg.Error as exc:
                if is_transient(exc):
                    raise
                raise StoreError(
                    f"cannot connect to the model index {redact_url(self._conninfo)}: {_one_line(exc)}"
                ) from exc
            self._conn = conn
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead socket: nothing left to close cleanly
                conn.close()

    def _run(self, action: str, fn: Callable[[psycopg.Connection], T]) -> T:
        """``fn(connection)`` with reconnects, retries and the breaker (see the module docstring)."""

        def attempt() -> T:
            conn = self._connection()
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if is_transient(exc):
                    self._discard()  # the next attempt reconnects
                raise

        return self.dependency.call(attempt, action=action, error=StoreUnavailableError)

    def _ensure_schema(self, conn: psycopg.Connection) -> None:
        """Create the tables once; a role that may only read (scoring machines) never needs CREATE."""
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL AS ready", (MODELS, NAMES)
        ).fetchone()
        if row["ready"]:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(models_table_ddl(MODELS))
            conn.execute(names_table_ddl(NAMES))

    def close(self) -> None:
        self._discard()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    # --------------------------------------------------------------------- API
    def add(self, record: ModelRecord, artifact: bytes) -> ModelRecord:
        key = self.artifacts.put(artifact, record.sha256, record.name)  # durable before the row

        def insert(conn: psycopg.Connection) -> ModelRecord:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(key),))
                if self.artifacts.shared_keys and not self.artifacts.exists(key):
                    self.artifacts.put(artifact, record.sha256, record.name)  # a concurrent rm took it
                version = conn.execute(
                    f"INSERT INTO {NAMES} (name, last_version) VALUES (%s, 1) ON CONFLICT (name) "
                    f"DO UPDATE SET last_version = {NAMES}.last_version + 1 RETURNING last_version",
                    (record.name,),
                ).fetchone()["last_version"]
                stored = record.replace(version=int(version), artifact=key, created_at=utc_now())
                row = record_to_row(stored)
                placeholders = ", ".join(["%s"] * len(COLUMNS))
                conn.execute(
                    f"INSERT INTO {MODELS} ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                    [row[c] for c in COLUMNS],
                )
            return stored

        try:
            return self._run(f"saving {record.name} in the model index", insert)
        except (psycopg.Error, StoreUnavailableError) as exc:
            if not self.artifacts.shared_keys:
                self.artifacts.delete(key)
            if isinstance(exc, StoreUnavailableError):
                raise
            raise StoreError(f"saving {record.name} failed in the model index: {_one_line(exc)}") from exc

    def get(self, name: str, version: int | str | None = None) -> ModelRecord:
        version = refuse_alias(version, "the PostgreSQL store")

        def select(conn: psycopg.Connection) -> Any:
            if version is None:
                return conn.execute(
                    f"SELECT * FROM {MODELS} WHERE name = %s ORDER BY version DESC LIMIT 1", (name,)
                ).fetchone()
            return conn.execute(
                f"SELECT * FROM {MODELS} WHERE name = %s AND version = %s", (name, version)
            ).fetchone()

        row = self._run("reading the model index", select)
        if row is None:
            raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
        return row_to_record(row)

    def list(self, name: str | None = None) -> list[ModelRecord]:
        def select(conn: psycopg.Connection) -> list[Any]:
            if name is None:
                return conn.execute(f"SELECT * FROM {MODELS} ORDER BY name, version").fetchall()
            query = f"SELECT * FROM {MODELS} WHERE name = %s ORDER BY version"
            return conn.execute(query, (name,)).fetchall()

        return [row_to_record(r) for r in self._run("reading the model index", select)]

    def read_artifact(self, record: ModelRecord) -> bytes:
        return self.artifacts.get(record.artifact)

    def remove(self, name: str, version: int | str | None = None) -> list[ModelRecord]:
        version = refuse_alias(version, "the PostgreSQL store")
        targets = [r for r in self.list(name) if version is None or r.version == version]
        if not targets:
            raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
        keys = sorted({r.artifact for r in targets})
        locks = [_lock_id(k) for k in keys]

        def delete(conn: psycopg.Connection) -> list[ModelRecord]:
            for lock in locks:  # session locks: held across the commit and the object deletes
                conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
            try:
                with conn.transaction():
                    removed = [
                        row_to_record(row)
                        for r in targets
                        for row in conn.execute(
                            f"DELETE FROM {MODELS} WHERE name = %s AND version = %s RETURNING *",
                            (r.name, r.version),
                        ).fetchall()
                    ]
                    used = f"SELECT 1 FROM {MODELS} WHERE artifact = %s LIMIT 1"
                    unused = [k for k in keys if conn.execute(used, (k,)).fetchone() is None]
                # after the commit: a crash here leaves a stray object, never a dangling row
                for key in unused:
                    self.artifacts.delete(key)
            finally:
                if not conn.broken:  # a dropped session released its locks with it
                    for lock in locks:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))
            return removed

        removed = self._run(f"removing {name} from the model index", delete)
        if not removed:  # removed concurrently by someone else
            raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
        return removed


def _server_of(conninfo: str) -> str:
    """``host:port`` of a libpq URL: the breaker's target, never credentials."""
    parts = urlsplit(conninfo)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}"


#: SQLSTATE classes that mean "this will not get better by retrying": bad credentials (28),
#: no such database (3D), a feature or privilege problem (0A, 42)
_PERMANENT_SQLSTATE = ("28", "3D", "0A", "42")


def is_transient(exc: BaseException) -> bool:
    """A failure of the connection or the server, not of the query: worth a retry.

    ``OperationalError`` covers refused and dropped connections, timeouts and a server
    shutting down (``AdminShutdown``); ``InterfaceError`` a connection already closed.
    Authentication failures and a missing database are operational errors too, but retrying
    them only delays the message, so their SQLSTATE class excludes them.
    """
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith(_PERMANENT_SQLSTATE):
        return False
    text = str(exc)
    return not ("password authentication failed" in text or ("database" in text and "does not exist" in text))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def open_store(url: str) -> PostgresStore:
    """The ``register_storage`` factory for ``postgresql://`` URLs."""
    return PostgresStore(url)
