"""Real servers for the tests, on 127.0.0.1: a Dask scheduler with two workers, moto's S3.

Each is a process group started with the virtualenv's own executables and stopped by PID
(SIGTERM to the group, SIGKILL after a grace period). Workers run ``--nworkers 1 --nthreads
1`` under a nanny, so a worker process killed by a test is restarted, as in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exe(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if not found.exists():
        raise RuntimeError(f"{name} is not installed next to {sys.executable}")
    return str(found)


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(
                    f"{what} did not start on port {port} (exit {proc.poll()}): {tail}"
                ) from None
            time.sleep(0.05)


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def executor(self) -> str:
        return "dask://" + self.address.removeprefix("tcp://")


def start_dask(workdir: Path, env: dict[str, str], n_workers: int = 2) -> DaskCluster:
    """``dask scheduler`` plus ``n_workers`` ``dask worker`` processes; returns once all joined."""
    port = free_port()
    log = workdir / "scheduler.log"
    scheduler = _start(
        [
            _exe("dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        log,
        env,
    )
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", scheduler)
    try:
        _wait_port(port, scheduler, "dask scheduler", log)
        for i in range(n_workers):
            cluster.workers.append(
                _start(
                    [
                        _exe("dask"),
                        "worker",
                        cluster.address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--memory-limit",
                        "2GiB",
                        "--local-directory",
                        str(workdir / f"worker-{i}"),
                    ],
                    workdir / f"worker-{i}.log",
                    env,
                )
            )
        from distributed import Client

        with Client(cluster.address, timeout=30) as client:
            client.wait_for_workers(n_workers, timeout=90)
    except BaseException:
        stop_dask(cluster)
        raise
    return cluster


def stop_dask(cluster: DaskCluster) -> None:
    for worker in cluster.workers:
        stop(worker)
    stop(cluster.scheduler)


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """What boto3, s3fs and any AWS tool need to talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def create_bucket(self) -> str:
        import boto3

        env = self.env()
        name = f"b-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=name)
        return name


def start_moto(workdir: Path) -> S3Server:
    port = free_port()
    log = workdir / "moto.log"
    proc = _start([_exe("moto_server"), "-H", "127.0.0.1", "-p", str(port)], log, dict(os.environ))
    try:
        _wait_port(port, proc, "moto_server", log)
    except BaseException:
        stop(proc)
        raise
    return S3Server(f"http://127.0.0.1:{port}", proc)
