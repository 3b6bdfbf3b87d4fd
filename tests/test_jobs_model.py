"""Job requests, allowed roots and the embedded pool, without Redis or HTTP."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from adcore.errors import ParameterError
from adcore.services.jobs.model import JobRequest, error_of
from adcore.services.jobs.roots import JobPathRefused, JobRoots
from tests.jobs_support import fit_model, write_rows


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "train"}, "job kind must be one of score, fit, detect"),
        ({"kind": "score", "model": "m", "input": "/x", "priority": "urgent"}, "job priority must be one of"),
        ({"kind": "score", "model": "m", "input": "/x", "outptu": "/y"}, "unknown field(s) for a score job"),
        ({"kind": "score", "model": "m"}, "a score job needs input"),
        ({"kind": "fit", "input": "/x", "algorithm": "core:hbos"}, "a fit job needs name"),
        ({"kind": "detect", "data": [[1, 2], [3]]}, "data row 1 has 1 values"),
        ({"kind": "detect", "data": [[1, True]]}, "every value must be a finite number"),
        ({"kind": "score", "model": 3, "input": "/x"}, "model must be a string"),
    ],
)
def test_bad_requests_are_refused_with_one_line(body, message):
    with pytest.raises(ParameterError, match=None) as info:
        JobRequest.parse(body)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_roots_refuse_what_is_outside_and_resolve_what_is_inside(tmp_path: Path):
    inside = tmp_path / "data"
    inside.mkdir()
    (tmp_path / "escape").symlink_to("/etc")
    roots = JobRoots.parse(f"{inside}, s3://bucket-a ,")
    assert roots.check(str(inside / "x.csv"), "input") == str((inside / "x.csv").resolve())
    assert roots.check("s3://bucket-a/in/", "input") == "s3://bucket-a/in/"
    for bad in ("/etc/passwd", f"{inside}/../x", "s3://bucket-b/x", "gs://bucket-a/x", "relative.csv",
                str(tmp_path / "escape" / "passwd"), f"{inside}-sibling/x"):  # fmt: skip
        with pytest.raises(JobPathRefused):
            roots.check(bad, "input")
    with pytest.raises(JobPathRefused, match="refused until ADCORE_JOB_ROOTS"):
        JobRoots.parse("").check(str(inside / "x.csv"), "input")
    assert JobPathRefused.http_status == 403


def test_error_of_keeps_the_clis_first_line_and_names_bugs():
    assert error_of(ParameterError("bad thing\nmore")) == {"type": "ParameterError", "message": "bad thing"}
    bug = error_of(ZeroDivisionError("division by zero"))
    assert bug["type"] == "ZeroDivisionError" and "this is a bug" in bug["message"]


def test_embedded_pool_runs_by_priority_publishes_events_and_keeps_results(tmp_path: Path, monkeypatch):
    from adcore.services.jobs.embedded import EmbeddedJobQueue

    data = write_rows(tmp_path / "in.csv")
    store = tmp_path / "models"
    model = fit_model(store, data)
    events: list = []
    pool = EmbeddedJobQueue(workers=1, store=str(store), publish=events.extend, ttl=60)
    try:
        rows = [[float(i), float(i % 3)] for i in range(30)]
        low = [pool.submit(JobRequest.parse({"kind": "detect", "data": rows, "priority": "low"}))[0].id
               for _ in range(3)]  # fmt: skip
        high = pool.submit(JobRequest.parse({"kind": "detect", "data": rows, "priority": "high"}))[0].id
        out = str(tmp_path / "o.csv")
        body = {"kind": "score", "model": model, "input": str(data), "output": out}
        score = pool.submit(JobRequest.parse(body))
        ids = [*low, high, score[0].id]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(pool.get(i).status != "finished" for i in ids):
            time.sleep(0.02)
        records = [pool.get(i) for i in ids]
        assert [r.status for r in records] == ["finished"] * 5, [r.error for r in records]
        started = [e.job for e in events if e.type == "job.started"]
        assert started.index(high) < started.index(low[-1])  # high overtook the low backlog
        assert os.path.exists(out) and pool.get(score[0].id).to_dict()["n_rows"] == 300
        assert [e.type for e in events if e.job == high] == ["job.started", "job.finished"]
        stats = pool.stats()
        assert stats["outcomes"][("detect", "finished")] == 4
    finally:
        pool.close()
