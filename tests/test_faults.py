"""Fault injection with the real servers: stop PostgreSQL, the S3 stand-in and Redis under a
running ``adcore serve`` (and ``adcore worker``), start them again, and check what clients saw.

What must hold (issue 19, resilience):

- no 5xx other than 503, and every 503 carries ``Retry-After`` and the JSON error shape;
- ``/health/readiness`` answers 503 during the outage and 200 again after it;
- nothing is lost: every model stored before is listed after, every job a client submitted
  (retrying its 503s with the same ``Idempotency-Key``) runs exactly once to the end;
- the adcore processes recover by themselves: same PIDs, no traceback in their logs.

The outage settings are shortened (breaker reset 2 s, a 2 s retry budget) so a test takes
seconds; the behaviour is the production one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.jobs_support import job_env, wait_for, workers, write_rows
from tests.redis_service import start_redis, stop_redis
from tests.server_harness import running_server
from tests.store_services import PgCluster, S3Server, start_moto, stop_process

pytestmark = pytest.mark.service

pytest.importorskip("httpx")
pytest.importorskip("fastapi")

FAST_RECOVERY = {
    "ADCORE_BREAKER_RESET_S": "2",
    "ADCORE_BREAKER_FAILURES": "3",
    "ADCORE_RETRY_ATTEMPTS": "2",
    "ADCORE_RETRY_TIMEOUT_S": "2",
}
ROWS = np.round(np.random.default_rng(0).normal(size=(200, 3)), 6).tolist()


@dataclass
class Answer:
    at: float
    what: str
    status: int
    retry_after: str | None
    error_type: str | None


@dataclass
class Prober:
    """Clients calling the server in a loop from threads, every answer recorded."""

    url: str
    calls: dict[str, tuple[str, str, dict | None]]
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _loop(self, what: str) -> None:
        import httpx

        method, path, body = self.calls[what]
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                if self.paused.is_set():
                    time.sleep(0.01)
                    continue
                try:
                    response = client.request(method, path, json=body)
                except httpx.HTTPError as exc:  # the server itself must never stop answering
                    self.answers.append(Answer(time.monotonic(), what, -1, None, type(exc).__name__))
                    continue
                error = None
                if response.status_code >= 400:
                    error = response.json()["error"]["type"]
                retry_after = response.headers.get("retry-after")
                self.answers.append(Answer(time.monotonic(), what, response.status_code, retry_after, error))
                time.sleep(0.05)

    def __enter__(self) -> Prober:
        for what in self.calls:
            thread = threading.Thread(target=self._loop, args=(what,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def between(self, start: float, end: float, what: str | None = None) -> list[Answer]:
        return [a for a in self.answers if start <= a.at <= end and (what is None or a.what == what)]

    def last_status(self, what: str) -> int | None:
        mine = [a for a in self.answers if a.what == what]
        return mine[-1].status if mine else None


def assert_only_200_or_503(answers: list[Answer]) -> None:
    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 201, 202, 503}, statuses
    for answer in answers:
        if answer.status == 503:
            assert answer.retry_after is not None and int(answer.retry_after) >= 1, answer
            assert answer.error_type in {"store_unavailable", "service_unavailable", "not_ready"}, answer


def assert_no_traceback(*logs: str) -> None:
    for log in logs:
        assert "Traceback" not in log, log[-3000:]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def pg(tmp_path: Path) -> Iterator[PgCluster]:
    cluster = PgCluster.create(prefix="adcore-pg-faults-")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@dataclass
class Moto:
    port: int
    process: subprocess.Popen

    @property
    def server(self) -> S3Server:
        return S3Server(f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        stop_process(self.process)

    def start(self) -> None:
        self.process, _ = start_moto(self.port)


@pytest.fixture
def moto() -> Iterator[Moto]:
    proc, port = start_moto()
    moto = Moto(port, proc)
    try:
        yield moto
    finally:
        moto.stop()


@pytest.fixture
def shared_store(pg: PgCluster, moto: Moto, monkeypatch: pytest.MonkeyPatch) -> str:
    """PostgreSQL index + S3 artifacts, three versions of model ``m`` saved in it."""
    import adcore
    from adcore.services import resilience

    for key, value in moto.server.env().items():
        monkeypatch.setenv(key, value)
    database = pg.server.create_database()
    bucket = moto.server.create_bucket()
    url = f"{pg.server.conninfo(database)}?artifacts=s3://{bucket}/models"
    X = np.asarray(ROWS)
    for seed in (1, 2, 3):
        adcore.fit(X, algo="core:hbos", name="m", store=url, seed=seed)
    resilience.forget_dependencies()
    return url


def _models(url: str, headers: dict[str, str] | None = None) -> list[tuple[str, int, str]]:
    import httpx

    body = httpx.get(f"{url}/v1/models", headers=headers, timeout=30).json()
    return [(m["name"], m["version"], m["sha256"]) for m in body["models"]]


# --------------------------------------------------------------------------- PostgreSQL
def test_postgres_stopped_and_started_under_load_gives_503s_then_recovers_with_nothing_lost(
    tmp_path: Path, pg: PgCluster, moto: Moto, shared_store: str
):
    env = {**moto.server.env(), **FAST_RECOVERY}
    with running_server(tmp_path / "srv", store=shared_store, env=env) as server:
        before = _models(server.url)
        assert [v for _, v, _ in before] == [1, 2, 3]
        calls = {
            "list": ("GET", "/v1/models", None),
            "ready": ("GET", "/health/readiness", None),
            "detect": ("POST", "/v1/models/m/score", {"data": ROWS[:20]}),
            "fit": ("POST", "/v1/models", {"name": "during", "algorithm": "core:hbos", "data": ROWS}),
        }
        with Prober(server.url, calls) as prober:
            time.sleep(1.5)
            down_at = time.monotonic()
            pg.stop("fast")
            time.sleep(6)
            up_at = time.monotonic()
            pg.start()
            wait_for(
                lambda: all(prober.last_status(w) in (200, 201) for w in calls),
                40,
                "every call to succeed again after PostgreSQL restarted",
            )
            time.sleep(1.0)
        recovered_at = time.monotonic()
        outage = prober.between(down_at + 1.0, up_at)
        assert_only_200_or_503(prober.answers)
        assert any(a.status == 503 for a in outage if a.what == "list"), Counter(a.status for a in outage)
        assert any(a.status == 503 for a in outage if a.what == "ready")
        assert any(a.status == 503 for a in outage if a.what == "fit")
        assert all(a.status in (200, 201) for a in prober.between(recovered_at - 0.5, recovered_at))
        after = _models(server.url)
        assert [m for m in after if m[0] == "m"] == before  # nothing lost or changed
        saved = [v for n, v, _ in after if n == "during"]
        fits_ok = sum(1 for a in prober.answers if a.what == "fit" and a.status == 201)
        assert saved == list(range(1, fits_ok + 1))  # every 201 stored, every 503 not, no gap
        assert server.process.poll() is None
        assert_no_traceback(server.output())
        # the readiness body names the breaker while it is open
        report = _outage_report(prober, down_at, up_at, recovered_at)
        (tmp_path / "postgres-outage.json").write_text(json.dumps(report))


def test_the_cli_reports_a_stopped_postgres_in_one_line_with_exit_2(
    tmp_path: Path, pg: PgCluster, shared_store: str
):
    pg.stop("fast")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(FAST_RECOVERY, ADCORE_HOME=str(tmp_path))
    data = write_rows(tmp_path / "in.csv")
    for args in (["models"], ["fit", "--algo", "core:hbos", "--input", str(data), "--model", "x"]):
        done = subprocess.run(
            [sys.executable, "-m", "adcore.cli.main", *args, "--store", shared_store],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert "postgres at 127.0.0.1:" in lines[0] and "is unavailable" in lines[0], lines[0]
        assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- S3
def test_s3_stopped_and_started_gives_503s_for_artifact_reads_then_recovers(
    tmp_path: Path, moto: Moto, shared_store: str
):
    """moto keeps objects in memory, so the test copies them before the stop and puts them back
    after the start, as a real S3 would have kept them; adcore is not restarted."""
    env = {**moto.server.env(), **FAST_RECOVERY}
    bucket = shared_store.split("artifacts=s3://")[1].split("/")[0]
    client = moto.server.client()
    saved = {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
             for o in client.list_objects_v2(Bucket=bucket)["Contents"]}  # fmt: skip
    with running_server(tmp_path / "srv", store=shared_store, env=env) as server:
        calls = {  # versions not yet loaded: each call reads its artifact from S3
            "v2": ("POST", "/v1/models/m@2/score", {"data": ROWS[:10]}),
            "v3": ("POST", "/v1/models/m@3/score", {"data": ROWS[:10]}),
            "ready": ("GET", "/health/readiness", None),
        }
        moto.stop()
        down_at = time.monotonic()
        with Prober(server.url, calls) as prober:
            time.sleep(5)
            up_at = time.monotonic()
            prober.paused.set()  # a real S3 comes back with its objects: no call between bucket and objects
            time.sleep(0.5)
            moto.start()
            restored = moto.server.client()
            restored.create_bucket(Bucket=bucket)
            for key, body in saved.items():
                restored.put_object(Bucket=bucket, Key=key, Body=body)
            prober.paused.clear()
            wait_for(
                lambda: all(prober.last_status(w) == 200 for w in calls), 40, "S3 reads to succeed again"
            )
        outage = prober.between(down_at, up_at)
        assert_only_200_or_503(prober.answers)
        assert any(a.status == 503 and a.error_type == "store_unavailable" for a in outage if a.what == "v2")
        assert any(a.status == 503 for a in outage if a.what == "ready")
        assert server.process.poll() is None
        assert_no_traceback(server.output())


# --------------------------------------------------------------------------- Redis
def test_redis_stopped_and_started_every_submitted_job_runs_once_and_the_worker_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import httpx

    pytest.importorskip("rq")
    from tests.jobs_support import fit_model, install_slow_executor

    root = tmp_path.resolve()
    redis_dir = root / "redis"
    redis_dir.mkdir()
    redis = start_redis(redis_dir, persistent=True)
    install_slow_executor(root / "site")
    data = write_rows(root / "in.csv")
    model = fit_model(root / "models", data)
    env = job_env(root, root / "site", root / "models", **FAST_RECOVERY)
    server_env = {"ADCORE_JOB_ROOTS": str(root), "PYTHONPATH": env["PYTHONPATH"], **FAST_RECOVERY}
    jobs = 24
    accepted: dict[int, str] = {}
    answers: list[tuple[int, int, str | None]] = []
    try:
        with (
            running_server(
                root / "srv", "--queue", redis.url, store=str(root / "models"), env=server_env
            ) as server,
            workers(redis.url, env, root, "high,normal,low") as procs,
        ):
            worker_pid = procs[0].pid

            def submit(i: int) -> None:
                out = str(root / f"out{i}.csv")
                body = {"kind": "score", "model": model, "input": str(data), "output": out,
                        "executor": "slowtest://0.05"}  # fmt: skip
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    key = {"Idempotency-Key": f"job-{i}"}
                    r = httpx.post(f"{server.url}/v1/jobs", json=body, headers=key, timeout=30)
                    answers.append((i, r.status_code, r.headers.get("retry-after")))
                    if r.status_code in (200, 202):
                        accepted[i] = r.json()["id"]
                        return
                    assert r.status_code == 503, r.text
                    time.sleep(min(float(r.headers["retry-after"]), 1.0))

            for i in range(jobs // 3):
                submit(i)
            first = [accepted[i] for i in range(jobs // 3)]
            status = lambda j: httpx.get(f"{server.url}/v1/jobs/{j}").json()["status"]  # noqa: E731
            wait_for(lambda: all(status(j) == "finished" for j in first), 60, "the first jobs to finish")
            stop_redis(redis)
            outage_started = len(answers)
            for i in range(jobs // 3, 2 * jobs // 3):  # these run into the outage and are retried
                thread = threading.Thread(target=submit, args=(i,), daemon=True)
                thread.start()
                if i == jobs // 3:
                    time.sleep(4)
                    redis = start_redis(redis_dir, port=redis.port, persistent=True)
                thread.join(timeout=90)
            for i in range(2 * jobs // 3, jobs):
                submit(i)
            assert len(accepted) == jobs, sorted(set(range(jobs)) - set(accepted))

            def all_finished() -> bool:
                try:
                    states = [httpx.get(f"{server.url}/v1/jobs/{j}", timeout=30).json()["status"]
                              for j in accepted.values()]  # fmt: skip
                except (httpx.HTTPError, KeyError):
                    return False
                return all(s == "finished" for s in states)

            try:
                wait_for(all_finished, 90, "every accepted job to finish")
            except AssertionError:
                states = Counter(httpx.get(f"{server.url}/v1/jobs/{j}", timeout=30).json()["status"]
                                 for j in accepted.values())  # fmt: skip
                logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in root.glob("worker-*.log"))
                raise AssertionError(f"jobs not finished: {states}\n{logs}") from None
            assert procs[0].poll() is None and procs[0].pid == worker_pid  # the worker rode it out
            assert server.process.poll() is None
            assert_no_traceback(server.output())
        statuses = Counter(status for _, status, _ in answers)
        assert set(statuses) <= {202, 200, 503}, statuses
        assert statuses[503] >= 1, "the outage was not seen"
        assert all(ra is not None for _, s, ra in answers[outage_started:] if s == 503)
        assert len(set(accepted.values())) == jobs  # one job per idempotency key
        for i in range(jobs):
            out = root / f"out{i}.csv"
            assert len(out.read_text().splitlines()) == 301
        writes = Counter((root / "writes.log").read_text().split())
        assert sorted(writes.values()) == [1] * jobs, writes  # each job's output written once
    finally:
        stop_redis(redis)
        for proc_log in root.glob("worker-*.log"):
            text = proc_log.read_text(errors="replace")
            assert "Traceback" not in text or "ConnectionError" in text, text[-3000:]


def test_a_worker_started_before_redis_waits_for_it_and_then_runs_jobs(tmp_path: Path):
    pytest.importorskip("rq")
    from tests.jobs_support import fit_model, install_slow_executor

    root = tmp_path.resolve()
    (root / "redis").mkdir()
    install_slow_executor(root / "site")
    data = write_rows(root / "in.csv")
    model = fit_model(root / "models", data)
    from tests.redis_service import _free_port

    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    env = job_env(root, root / "site", root / "models", **FAST_RECOVERY)
    with workers(url, env, root, "normal") as procs:
        log = root / "worker-0.log"
        wait_for(lambda: "Redis unavailable" in log.read_text(errors="replace"), 60, "the worker to wait")
        redis = start_redis(root / "redis", port=port, persistent=True)
        try:
            from adcore.services.jobs.model import JobRequest
            from adcore.services.jobs.queue import open_queue
            from adcore.services.jobs.roots import checked_request

            os.environ["ADCORE_JOB_ROOTS"] = str(root)
            try:
                queue = open_queue(url)
                body = {"kind": "score", "model": model, "input": str(data), "output": str(root / "o.csv"),
                        "executor": "slowtest://0"}  # fmt: skip
                record, _ = queue.submit(checked_request(JobRequest.parse(body)))
            finally:
                del os.environ["ADCORE_JOB_ROOTS"]
            wait_for(lambda: queue.get(record.id).status == "finished", 60, "the job to run")
            assert procs[0].poll() is None
            text = log.read_text(errors="replace")
            assert "Traceback" not in text
            waits = [line for line in text.splitlines() if "Redis unavailable" in line]
            assert waits[0].startswith("adcore worker ") and "restarting in" in waits[0], waits[0]
        finally:
            stop_redis(redis)


def _outage_report(prober: Prober, down_at: float, up_at: float, recovered_at: float) -> dict:
    """What each kind of call saw before, during and after the outage (for the closing note)."""
    phases = {"before": (0, down_at), "during": (down_at, up_at), "after": (up_at, recovered_at)}
    report: dict = {
        phase: {what: dict(Counter(a.status for a in prober.between(lo, hi, what))) for what in prober.calls}
        for phase, (lo, hi) in phases.items()
    }
    report["seconds_to_first_success_after_restart"] = {
        what: round(min(a.at for a in prober.between(up_at, recovered_at, what) if a.status < 300) - up_at, 2)
        for what in prober.calls
    }
    return report
