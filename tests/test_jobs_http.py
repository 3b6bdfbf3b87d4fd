"""``/v1/jobs`` over real HTTP on loopback: the embedded pool (no ``--queue``) and Redis with workers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.jobs_support import fit_model, install_slow_executor, job_env, workers, write_rows
from tests.redis_service import redis_server  # noqa: F401 - the fixture
from tests.server_harness import running_server

KEY = "k" * 32


def _wait(client, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in ("finished", "failed", "canceled"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


@pytest.fixture
def files(tmp_path: Path):
    root = tmp_path.resolve()
    install_slow_executor(root / "site")
    data = write_rows(root / "in.csv")
    model = fit_model(root / "models", data)
    return root, data, model


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = job_env(root, root / "site", root / "models", **extra)
    return {k: v for k, v in env.items() if k.startswith(("ADCORE_JOB", "SLOWTEST", "PYTHONPATH"))}


@pytest.mark.service
def test_embedded_jobs_score_fit_detect_and_refuse_over_http(files):
    root, data, model = files
    with running_server(root / "srv", api_key=KEY, store=str(root / "models"), env=_env(root)) as server:
        import httpx

        assert httpx.post(f"{server.url}/v1/jobs", json={"kind": "detect"}).status_code == 401
        with server.client() as client:
            posted = client.post(
                "/v1/jobs",
                json={"kind": "score", "model": model, "input": str(data), "output": str(root / "o.csv")},
            )
            assert posted.status_code == 202, posted.text
            job = posted.json()
            assert posted.headers["location"] == f"/v1/jobs/{job['id']}"
            assert job["status"] in ("queued", "started", "finished")
            done = _wait(client, job["id"])
            assert done["status"] == "finished" and done["n_rows"] == 300
            assert (root / "o.csv").exists()

            fit = client.post("/v1/jobs", json={"kind": "fit", "algorithm": "core:hbos", "input": str(data),
                                                "name": "refit", "seed": 3, "priority": "high"})  # fmt: skip
            fitted = _wait(client, fit.json()["id"])
            assert fitted["status"] == "finished" and fitted["model"] == "refit@1"

            rows = [[0.0, 1.0], [0.1, 0.9], [0.2, 1.1], [9.0, -9.0]] * 5
            det = client.post("/v1/jobs", json={"kind": "detect", "data": rows, "seed": 0})
            detected = _wait(client, det.json()["id"])
            assert detected["status"] == "finished" and detected["n_rows"] == 20
            assert len(detected["result"]["scores"]) == 20

            for bad in ("/etc/passwd", f"{root}/../x.csv", "s3://unlisted/x.csv"):
                refused = client.post("/v1/jobs", json={"kind": "score", "model": model, "input": bad})
                assert refused.status_code == 403, refused.text
                assert refused.json()["error"]["type"] == "job_path_refused"
            misspelt = {"kind": "score", "model": model, "input": str(data), "x": 1}
            unknown = client.post("/v1/jobs", json=misspelt)
            assert unknown.status_code == 400 and unknown.json()["error"]["type"] == "parameter"

            failing = client.post("/v1/jobs", json={"kind": "score", "model": "nope", "input": str(data)})
            failed = _wait(client, failing.json()["id"])
            assert failed["status"] == "failed"
            assert failed["error"]["type"] == "ModelNotFoundError"
            assert str(root) not in failed["error"]["message"]  # no server paths in responses

            headers = {"Idempotency-Key": "abc"}
            body = {"kind": "detect", "data": rows}
            one = client.post("/v1/jobs", json=body, headers=headers)
            two = client.post("/v1/jobs", json=body, headers=headers)
            assert one.json()["id"] == two.json()["id"] and two.headers["idempotent-replayed"] == "true"

            listed = client.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
            assert {j["id"] for j in listed} >= {job["id"], fitted["id"], failed["id"]}
            assert client.get("/v1/jobs/nope").status_code == 404
            assert client.delete(f"/v1/jobs/{job['id']}").status_code == 409  # already finished

            metrics = client.get("/metrics").text
            assert 'adcore_jobs_queued{priority="high"} 0.0' in metrics
            assert 'adcore_jobs_completed_total{kind="score",status="finished"} 1.0' in metrics
            assert 'adcore_jobs_completed_total{kind="score",status="failed"} 1.0' in metrics
            assert 'adcore_jobs_duration_seconds_count{kind="fit"} 1.0' in metrics


@pytest.mark.service
def test_redis_jobs_over_http_with_a_worker(files, redis_server):  # noqa: F811
    redis_server.flush()
    root, data, model = files
    env = _env(root)
    with running_server(root / "srv", "--queue", redis_server.url, api_key=KEY, store=str(root / "models"),
                        env=env) as server, server.client() as client:  # fmt: skip
        posted = client.post("/v1/jobs", json={"kind": "score", "model": model, "input": str(data),
                                               "output": str(root / "r.csv"), "priority": "low"})  # fmt: skip
        assert posted.status_code == 202
        job_id = posted.json()["id"]
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        assert 'adcore_jobs_queued{priority="low"} 1.0' in client.get("/metrics").text
        refused = client.post("/v1/jobs", json={"kind": "score", "model": model, "input": "/etc/passwd"})
        assert refused.status_code == 403
        worker_env = job_env(root, root / "site", root / "models")
        with workers(redis_server.url, worker_env, root, "high,normal,low"):
            done = _wait(client, job_id)
        assert done["status"] == "finished" and done["n_rows"] == 300
        finished = 'adcore_jobs_completed_total{kind="score",status="finished"} 1.0'
        assert finished in client.get("/metrics").text
        cancel = client.post("/v1/jobs", json={"kind": "detect", "data": [[1.0], [2.0], [3.0]]})
        canceled = client.post(f"/v1/jobs/{cancel.json()['id']}/cancel")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
