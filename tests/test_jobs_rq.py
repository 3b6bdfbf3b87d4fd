"""Jobs on a real Redis with real ``adcore worker`` processes: priority, SIGKILL recovery,
idempotency, refused paths and a failing job's stored error (issue 18)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.jobs_support import (
    fit_model,
    install_slow_executor,
    job_env,
    kill_tree,
    wait_for,
    workers,
    write_rows,
)
from tests.redis_service import redis_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.service


@dataclass
class Setup:
    root: Path
    site: Path
    store: Path
    data: Path
    model: str
    url: str

    def env(self, **extra: str) -> dict[str, str]:
        return job_env(self.root, self.site, self.store, **extra)


@pytest.fixture
def setup(tmp_path: Path, redis_server, monkeypatch: pytest.MonkeyPatch) -> Setup:  # noqa: F811
    redis_server.flush()
    root = tmp_path.resolve()
    install_slow_executor(root / "site")
    data = write_rows(root / "in.csv")
    model = fit_model(root / "models", data)
    monkeypatch.setenv("ADCORE_JOB_ROOTS", str(root))
    monkeypatch.setenv("ADCORE_STORE", str(root / "models"))
    return Setup(root, root / "site", root / "models", data, model, redis_server.url)


def _queue(setup: Setup):
    from adcore.services.jobs.queue import open_queue

    return open_queue(setup.url)


def _submit(queue, setup: Setup, out: str, *, priority: str = "normal", delay: float = 0.0, **fields):
    from adcore.services.jobs.model import JobRequest
    from adcore.services.jobs.roots import checked_request

    body = {"kind": "score", "model": setup.model, "input": str(setup.data), "output": str(setup.root / out),
            "priority": priority, "executor": f"slowtest://{delay}", **fields}  # fmt: skip
    record, _ = queue.submit(checked_request(JobRequest.parse(body)))
    return record.id


def _ended(queue, ids):
    records = [queue.get(i) for i in ids]
    return records if all(r.status in ("finished", "failed", "canceled") for r in records) else None


def test_a_new_high_job_is_started_before_a_backlog_of_low_ones(setup: Setup):
    queue = _queue(setup)
    first = _submit(queue, setup, "low0.csv", priority="low", delay=1.5)
    with workers(setup.url, setup.env(), setup.root, "high,normal,low"):
        wait_for(lambda: queue.get(first).status == "started", 30, "the first low job to start")
        backlog = [_submit(queue, setup, f"low{i}.csv", priority="low") for i in range(1, 4)]
        high = _submit(queue, setup, "high.csv", priority="high")
        records = wait_for(lambda: _ended(queue, [first, *backlog, high]), 40, "every job to end")
    assert {r.status for r in records} == {"finished"}, [r.error for r in records]
    order = [r.id for r in sorted(records, key=lambda r: r.started_at)]
    assert order[:2] == [first, high]
    depth = queue.depths()
    assert depth == {"high": 0, "normal": 0, "low": 0}


def test_a_job_of_a_sigkilled_worker_is_rerun_and_each_output_written_once(setup: Setup):
    queue = _queue(setup)
    ids = [_submit(queue, setup, f"out{i}.csv", delay=1.5) for i in range(4)]
    with workers(setup.url, setup.env(), setup.root, "high,normal,low", "high,normal,low") as procs:
        # started by RQ *and* running our code (attempts counted): a kill between RQ marking it
        # started and the work horse counting the attempt would leave attempts at 1 after the rerun
        started = wait_for(
            lambda: [r for r in (queue.get(i) for i in ids) if r.status == "started" and r.attempts >= 1],
            30,
            "a job to start",
        )
        from rq.job import Job
        from rq.serializers import JSONSerializer

        victim_job = started[0].id
        worker_name = Job.fetch(victim_job, connection=queue.redis, serializer=JSONSerializer).worker_name
        victim = next(p for p in procs if worker_name and worker_name.startswith(_name_prefix(p, setup)))
        kill_tree(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        records = wait_for(lambda: _ended(queue, ids), 60, "every job to end after the SIGKILL")
    assert [r.status for r in records] == ["finished"] * 4, [r.error for r in records]
    rerun = queue.get(victim_job)
    assert rerun.attempts >= 2
    writes = Counter((setup.root / "writes.log").read_text().split())
    for i in range(4):
        out = setup.root / f"out{i}.csv"
        assert out.exists()
        assert len(out.read_text().splitlines()) == 301  # header + one row per input row
    # the executor wrote each job's (temporary) output once: the killed run died before writing
    assert sorted(writes.values()) == [1, 1, 1, 1], writes


def _name_prefix(proc: subprocess.Popen, setup: Setup) -> str:
    """The ``--name`` a worker was started with (w<index>-...): read back from its command line."""
    import psutil

    args = psutil.Process(proc.pid).cmdline()
    return args[args.index("--name") + 1]


def test_a_second_run_of_a_finished_job_finds_its_output_and_writes_nothing(setup: Setup):
    from adcore.services.jobs.runner import run_job

    out = setup.root / "once.csv"
    request = {"kind": "score", "model": setup.model, "input": str(setup.data), "output": str(out)}
    first = run_job("job-1", request)
    stat = out.stat()
    second = run_job("job-1", request)
    assert second == first
    assert (out.stat().st_ino, out.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert not [p for p in setup.root.iterdir() if p.name.startswith(".once.csv.job-1.csv")]


def test_a_failing_job_stores_the_clis_one_line_typed_error(setup: Setup):
    queue = _queue(setup)
    bad = _submit(queue, setup, "never.csv", model="nope@1")
    with workers(setup.url, setup.env(), setup.root, "normal"):
        (record,) = wait_for(lambda: _ended(queue, [bad]), 30, "the failing job to end")
    assert record.status == "failed"
    assert record.error["type"] == "ModelNotFoundError"
    cli = subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", "score", "--model", "nope@1", "-i", str(setup.data)],
        capture_output=True, text=True, env=setup.env(), timeout=60,
    )  # fmt: skip
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"error: {record.error['message']}"
    assert "\n" not in record.error["message"]
    assert record.attempts == 1  # a user error is an outcome: never retried
    assert not (setup.root / "never.csv").exists()


def test_idempotency_key_returns_the_existing_job(setup: Setup):
    from adcore.services.jobs.model import JobRequest
    from adcore.services.jobs.roots import checked_request

    queue = _queue(setup)
    request = checked_request(JobRequest.parse(
        {"kind": "score", "model": setup.model, "input": str(setup.data), "output": str(setup.root / "i.csv")}
    ))  # fmt: skip
    first, new = queue.submit(request, idempotency_key="client-42")
    again, replayed_new = queue.submit(request, idempotency_key="client-42")
    other, other_new = queue.submit(request, idempotency_key="client-43")
    assert (new, replayed_new, other_new) == (True, False, True)
    assert again.id == first.id and other.id != first.id
    assert queue.depths()["normal"] == 2


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "{root}/../etc/passwd", "{root}/sub/../../x.csv", "s3://other-bucket/x.csv"]
)
def test_paths_outside_the_roots_are_refused_before_anything_is_enqueued(setup: Setup, path: str):
    from adcore.services.jobs.model import JobRequest
    from adcore.services.jobs.roots import JobPathRefused, checked_request

    queue = _queue(setup)
    body = {"kind": "score", "model": setup.model, "input": path.format(root=setup.root)}
    with pytest.raises(JobPathRefused):
        queue.submit(checked_request(JobRequest.parse(body)))
    assert queue.depths() == {"high": 0, "normal": 0, "low": 0}
    assert queue.list() == []


def test_jobs_cli_lists_shows_and_cancels(setup: Setup):
    queue = _queue(setup)
    job = _submit(queue, setup, "c.csv", priority="low")
    env = setup.env(ADCORE_QUEUE=setup.url)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "adcore.cli.main", "jobs", *args], capture_output=True, text=True,
            env=env, timeout=60,
        )  # fmt: skip

    listed = cli("list")
    assert listed.returncode == 0 and job in listed.stdout and "queued" in listed.stdout
    shown = cli("show", job)
    assert shown.returncode == 0 and f'"id": "{job}"' in shown.stdout
    canceled = cli("cancel", job)
    assert canceled.returncode == 0 and canceled.stdout.strip() == f"{job} canceled"
    again = cli("cancel", job)
    assert again.returncode == 2 and "already canceled" in again.stderr
    missing = cli("show", "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("error: no job 'nope'")
    assert queue.depths()["low"] == 0


def test_canceling_a_running_job_stops_it_and_it_is_not_rerun(setup: Setup):
    queue = _queue(setup)
    job = _submit(queue, setup, "stopped.csv", delay=3.0)
    with workers(setup.url, setup.env(), setup.root, "normal"):
        wait_for(lambda: queue.get(job).status == "started", 30, "the job to start")
        assert queue.cancel(job).status in ("started", "canceled")
        record = wait_for(lambda: (r := queue.get(job)).status == "canceled" and r, 20, "the job to stop")
        later = _submit(queue, setup, "after.csv")
        wait_for(lambda: queue.get(later).status == "finished", 30, "the next job to run")
    assert record.status == "canceled" and queue.get(job).status == "canceled"
    assert not (setup.root / "stopped.csv").exists()
