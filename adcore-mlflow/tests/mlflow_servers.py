"""Start and stop MLflow's servers for the tests: free loopback port, new process group, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlflow_exe() -> list[str]:
    exe = Path(sys.executable).with_name("mlflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADCORE_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def start(
    command: list[str], port: int, log: Path, env: dict[str, str], ready: str, timeout: float = 90
) -> Server:
    """Run ``command`` in its own session and wait until ``GET ready`` answers 200."""
    handle = open(log, "wb")  # noqa: SIM115 - the server writes to it until it is stopped
    process = subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}{ready}", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            pytest.fail(f"{command[0]} did not start (exit {process.poll()}): {log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_server(server: Server) -> None:
    """SIGTERM the server's process group (its workers too), SIGKILL what is left after 10 s."""
    if server.process.poll() is None:
        with_group(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with_group(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
    with_group(server.process.pid, signal.SIGKILL)  # workers that outlived their parent


def with_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the session leader's pid is its group id


def start_mlflow_server(root: Path, port: int | None = None) -> Server:
    """``port``: a given one, to start a stopped server again where its clients look for it."""
    port = port or free_port()
    command = [
        *mlflow_exe(),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    return start(command, port, root / "server.log", server_env(), "/health")


def start_model_server(model_uri: str, tracking_uri: str, root: Path) -> Server:
    port = free_port()
    command = [
        *mlflow_exe(),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    env = server_env(MLFLOW_TRACKING_URI=tracking_uri)
    return start(command, port, root / "serve.log", env, "/ping")
