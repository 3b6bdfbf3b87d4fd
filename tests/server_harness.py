"""A real ``adcore serve`` on loopback for the server's service tests.

Each server is the CLI itself in a subprocess (``python -m adcore.cli.main serve``) on a
free port, with its own ``ADCORE_HOME`` and store, started in ~1-2 s and stopped by PID
(SIGTERM, then SIGKILL). Tests talk to it with httpx, schemathesis or Chromium.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server: its base URL, the key it wants (if any) and its log file."""

    url: str
    process: subprocess.Popen
    log: Path
    api_key: str | None = None
    store: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client(self, **kwargs: object) -> object:
        import httpx

        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _base_env(home: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["ADCORE_HOME"] = str(home)
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the core's detectors are all these tests need
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


@contextmanager
def running_server(
    tmp: Path,
    *args: str,
    api_key: str | None = None,
    store: str | None = None,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> Iterator[Server]:
    """Start ``adcore serve ARGS`` on a free loopback port; stop it by PID afterwards."""
    import httpx

    tmp.mkdir(parents=True, exist_ok=True)
    extra = dict(env or {})
    if api_key is not None:
        extra["ADCORE_API_KEY"] = api_key
    store = store if store is not None else str(tmp / "models")
    log = tmp / f"server-{time.monotonic_ns()}.log"
    for attempt in range(3):  # a port taken between free_port() and bind: try another
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "adcore.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            store,
            "--log-level",
            "warning",
            *args,
        ]
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_base_env(tmp, extra),
                start_new_session=True,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log, api_key, store, extra)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{server.url}/health/liveness", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        if process.poll() is None:
            break
        if attempt == 2 or "address already in use" not in server.output().lower():
            raise RuntimeError(f"adcore serve exited with {process.returncode}:\n{server.output()}")
    else:  # pragma: no cover
        raise RuntimeError("could not start adcore serve")
    if process.poll() is not None or (wait_ready and time.monotonic() >= deadline):
        stop(process)
        raise RuntimeError(f"adcore serve did not come up within {START_TIMEOUT_S} s:\n{server.output()}")
    try:
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after 10 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def training_rows(n: int = 400, d: int = 3, *, seed: int = 0, shift: float = 0.0) -> list[list[float]]:
    """Gaussian rows with a few planted outliers in the first rows, rounded to 6 digits."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + shift
    X[:4] += 6.0
    return np.round(X, 6).tolist()
