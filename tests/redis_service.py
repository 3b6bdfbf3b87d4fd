"""A real ``redis-server`` on loopback for the job-queue tests (persistence off, stopped by PID).

Started once per test session on a free port (``--save '' --appendonly no``: nothing touches
the disk), in ~0.02 s. Tests that need it are skipped, with the reason, only when
``redis-server`` is not installed (CI installs it: scripts/system-deps.sh).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: Path, *, port: int | None = None, persistent: bool = False) -> RedisServer:
    """``persistent``: an append-only file synced on every write, so a stopped server restarted
    with the same ``workdir`` (and ``port``) has every key back (the fault-injection tests)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server; scripts/system-deps.sh)")
    pytest.importorskip("rq", reason="the jobs extra is not installed: pip install -e '.[jobs]'")
    port = port or _free_port()
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    log = open(workdir / "redis.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", *durability,
         "--dir", str(workdir)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(workdir / 'redis.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return RedisServer(port, process)
        except OSError:
            time.sleep(0.02)
    stop_redis(RedisServer(port, process))
    raise RuntimeError("redis-server did not answer within 10 s")


def stop_redis(server: RedisServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_redis(server)
