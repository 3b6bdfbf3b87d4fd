"""What the job tests share: a slow test executor plugin, a stored model, worker processes.

The ``slowtest`` executor (``slowtest://SECONDS``) is a real plugin distribution on
PYTHONPATH: it sleeps, then scores through the local executor, and appends one line per
completed write to ``$SLOWTEST_LOG``; so a test can hold a job mid-run (to SIGKILL its
worker) and count how often each output was written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

SLOW_EXECUTOR = '''
import os, time
import adcore
from adcore.services.executors import LocalExecutor

class SlowExecutor(LocalExecutor):
    name = "slowtest"

    def __init__(self, url="slowtest://0"):
        self.delay = float(url.split("://", 1)[1] or 0) if "://" in url else 0.0

    def score(self, job, progress=None):
        time.sleep(self.delay)
        summary = super().score(job, progress)
        with open(os.environ["SLOWTEST_LOG"], "a") as fh:
            fh.write(f"{job.output}\\n")
        return summary

@adcore.hookimpl
def register_executors(register):
    register("slowtest", SlowExecutor, summary="sleeps, then scores locally (tests)")
'''


def install_slow_executor(site: Path) -> None:
    site.mkdir(parents=True, exist_ok=True)
    (site / "slowtest_plugin.py").write_text(SLOW_EXECUTOR)
    info = site / "slowtest_plugin-1.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowtest-plugin\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[adcore]\nslowtest = slowtest_plugin\n")


def write_rows(path: Path, n: int = 300, seed: int = 0) -> Path:
    X = np.random.default_rng(seed).normal(size=(n, 3))
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="", fmt="%.6f")
    return path


def fit_model(store: Path, data: Path, name: str = "m") -> str:
    import adcore
    from adcore.data import read_dataset

    dataset = read_dataset(str(data))
    adcore.fit(dataset.X, algo="core:hbos", name=name, store=str(store), seed=1)
    return f"{name}@1"


def job_env(root: Path, site: Path, store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(
        ADCORE_HOME=str(root / "home"),
        ADCORE_STORE=str(store),
        ADCORE_JOB_ROOTS=str(root),
        SLOWTEST_LOG=str(root / "writes.log"),
        PYTHONPATH=os.pathsep.join([str(site), str(REPO)]),
    )
    env.update(extra)
    return env


@contextmanager
def workers(
    url: str, env: dict[str, str], log_dir: Path, *queue_orders: str
) -> Iterator[list[subprocess.Popen]]:
    """``adcore worker`` processes, one per queue order; all stopped by PID (with their horses)."""
    procs = []
    try:
        for i, order in enumerate(queue_orders):
            with open(log_dir / f"worker-{i}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "adcore.cli.main", "worker", "--queue", url, "--queues", order,
                         "--heartbeat", "1", "--name", f"w{i}-{time.monotonic_ns()}"],
                        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                    )
                )  # fmt: skip
        yield procs
    finally:
        for proc in procs:
            kill_tree(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_tree(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def kill_tree(pid: int, sig: int) -> None:
    """Signal ``pid`` and its children (RQ's work horse runs in a process group of its own)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        with suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
