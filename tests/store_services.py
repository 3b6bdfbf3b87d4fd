"""Real servers for the model-store tests: PostgreSQL 15 and moto's S3, on loopback.

Both start once per test session (initdb ~1 s, moto ~1 s) and stop by PID at the end;
each test gets a fresh database and bucket. The PostgreSQL server binaries are found
with ``pg_config --bindir`` (Debian: package ``postgresql-15``; the client on PATH is
not enough); ``moto_server`` comes from the virtualenv (``pip install "moto[server]"``).
Without the PostgreSQL binaries the ``service`` cases skip; with them, they run, and a
missing Python package (psycopg, boto3, moto) is a failure, not a silent skip.

``store_url`` is the fixture the registry suite is parametrized over: ``sqlite`` (a
directory in tmp_path), ``postgres`` (PostgreSQL index + S3 artifacts) and ``mlflow``
(adcore-mlflow's ``mlflow://`` store on MLflow's SQLite backend with a local artifact root,
no server; skipped only where adcore-mlflow is not installed, as in the core-alone env).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bindir() -> Path | None:
    """The server binaries' folder (``pg_config --bindir``), if PostgreSQL is installed."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
    path = Path(out)
    return path if (path / "initdb").exists() and (path / "pg_ctl").exists() else None


def _require(module: str, install: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"PostgreSQL is installed, so the service tests must run; missing {module}: pip install {install}"
        )


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name


class PgCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, fsync off) that tests can stop
    and start again on the same port and data directory (the fault-injection tests)."""

    def __init__(self, root: Path, bindir: Path) -> None:
        self.root = root
        self.port = free_port()
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.prefix: list[str] = []
        if as_root:  # initdb refuses root: run the server as the postgres user
            # mode 700 from mkdtemp; its parent must be traversable
            shutil.chown(root, "postgres", "postgres")
            if not root.parent.stat().st_mode & 0o001:
                root.parent.chmod(root.parent.stat().st_mode | 0o011)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data, self.log = root / "data", root / "log"
        subprocess.run(
            [*self.prefix, str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
             "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.pg_ctl = [*self.prefix, str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]

    @classmethod
    def create(cls, prefix: str = "adcore-pg-") -> PgCluster:
        bindir = pg_bindir()
        if bindir is None:
            pytest.skip(
                "PostgreSQL server binaries not found (pg_config --bindir); apt-get install postgresql-15"
            )
        _require("psycopg", "'psycopg[binary]'")
        return cls(Path(tempfile.mkdtemp(prefix=prefix)), bindir)

    @property
    def server(self) -> PostgresServer:
        return PostgresServer("127.0.0.1", self.port)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        )
        started = subprocess.run(
            [*self.pg_ctl, "-w", "-t", "30", "-o", options, "start"], capture_output=True, text=True
        )
        if started.returncode != 0:
            log_text = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr} {log_text[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, the server shuts down cleanly; ``immediate``: a crash."""
        subprocess.run([*self.pg_ctl, "-m", mode, "-w", "stop"], capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, fsync off)."""
    cluster = PgCluster.create()
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.remove()
        pytest.fail(str(exc))
    try:
        yield cluster.server
    finally:
        cluster.remove()


@dataclass
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        """What boto3 (and any AWS tool) needs to talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def start_moto(port: int | None = None) -> tuple[subprocess.Popen, int]:
    """moto's S3 server on 127.0.0.1 (data in memory): the process and its port."""
    _require("boto3", "boto3")
    _require("moto", "'moto[server]'")
    exe = Path(sys.executable).with_name("moto_server")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    port = port or free_port()
    proc = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError(f"moto_server did not start on port {port} (exit {proc.poll()})") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server(postgres_server: PostgresServer) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (data in memory); started only when PostgreSQL runs."""
    try:
        proc, port = start_moto()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        stop_process(proc)


@pytest.fixture
def postgres_store_url(
    postgres_server: PostgresServer, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A fresh database and bucket; the AWS variables are set so subprocesses inherit them."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    database = postgres_server.create_database()
    bucket = s3_server.create_bucket()
    return f"{postgres_server.conninfo(database)}?artifacts=s3://{bucket}/models"


def mlflow_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh MLflow SQLite database and artifact root; subprocesses inherit the settings.

    A plain function called by ``store_url`` (conftest.py imports the fixtures by name).
    """
    pytest.importorskip("adcore_mlflow", reason="adcore-mlflow is not installed (core-alone env)")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    root = tmp_path / "mlflow"
    root.mkdir()
    return f"mlflow://{root}/mlflow.db?artifacts={root}/artifacts"


#: ``python -c`` program: the CLI with a pause before the MLflow store creates the version
#: (its commit), the mlflow counterpart of tests/crash_points.py's SQLite and PostgreSQL pauses.
_MLFLOW_CRASH = """
import sys
sys.path.insert(0, sys.argv[1])
from crash_points import _pause
from adcore_mlflow.store import MlflowStore
publish = MlflowStore._publish
def _paused(self, *args, **kwargs):
    _pause(float(sys.argv[2]))
    return publish(self, *args, **kwargs)
MlflowStore._publish = _paused
from adcore.cli.main import run_cli
sys.exit(run_cli(sys.argv[3:]))
"""


def crash_command(store_url: str, seconds: int) -> list[str]:
    """The command that runs the CLI and pauses (printing crash_points.MARKER) before the commit."""
    tests = Path(__file__).resolve().parent
    if store_url.startswith("mlflow:"):
        return [sys.executable, "-c", _MLFLOW_CRASH, str(tests), str(seconds)]
    return [sys.executable, str(tests / "crash_points.py"), str(seconds)]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.service),
        pytest.param("mlflow", marks=pytest.mark.service),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every registry test runs on every backend: the embedded store, PostgreSQL + S3, MLflow."""
    if request.param == "sqlite":
        return str(tmp_path / "store")
    if request.param == "mlflow":
        return mlflow_store_url(tmp_path, request.getfixturevalue("monkeypatch"))
    return str(request.getfixturevalue("postgres_store_url"))
