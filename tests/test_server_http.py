"""``adcore serve`` over real HTTP: uvicorn on a loopback port, clients with httpx.

Auth, every limit as a client meets it, parallel scoring on one model, readiness when
the store is gone, plugin routes from a real entry point, and several workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

import httpx
from conftest import REPO
from server_harness import running_server, training_rows

pytestmark = pytest.mark.service

KEY = "s3cret-key-for-tests"


def error_of(response: httpx.Response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == error_type and error["message"]
    return error


def test_api_key_is_required_everywhere_but_liveness(tmp_path):
    with running_server(tmp_path, api_key=KEY) as server:
        anonymous = httpx.Client(base_url=server.url, timeout=30)
        assert anonymous.get("/health/liveness").json() == {"status": "ok"}
        for method, path in [
            ("GET", "/v1/models"),
            ("POST", "/v1/detect"),
            ("GET", "/v1/algorithms"),
            ("GET", "/health/readiness"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("DELETE", "/v1/models/x"),
            ("GET", "/v1/detections"),
        ]:
            response = anonymous.request(
                method, path, json={"data": [[1], [2]]} if method == "POST" else None
            )
            error = error_of(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in error["message"]
        wrong = anonymous.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert error_of(wrong, 401, "unauthorized")["message"] == "wrong API key"
        assert error_of(
            anonymous.get("/v1/models", headers={"Authorization": f"Basic {KEY}"}), 401, "unauthorized"
        )
        with server.client() as client:
            assert client.get("/v1/models").json() == {"models": []}
            detected = client.post(
                "/v1/detect", json={"algorithm": "core:hbos", "data": [[1, 2], [3, 4], [9, 9]]}
            )
            assert detected.status_code == 200 and len(detected.json()["scores"]) == 3
            assert client.get("/health/readiness").json()["status"] == "ready"
        assert (
            anonymous.get("/").status_code == 200
        )  # the static page holds no data; its API calls need the key


def test_every_limit_over_http(tmp_path):
    args = (
        "--max-body-mb",
        "0.05",
        "--max-rows",
        "100",
        "--max-features",
        "5",
        "--rate-limit",
        "1",
        "--burst",
        "8",
    )
    with running_server(tmp_path, *args, api_key=KEY) as server, server.client() as client:
        big = b'{"data": [' + b",".join([b"[1.0, 2.0, 3.0]"] * 5000) + b"]}"
        error = error_of(
            client.post("/v1/detect", content=big, headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
        assert "0.05 MB" in error["message"]

        def chunks():
            for _ in range(200):
                yield b" " * 4096

        streamed = client.post("/v1/detect", content=chunks(), headers={"content-type": "application/json"})
        error_of(streamed, 413, "payload_too_large")
        error_of(client.post("/v1/detect", json={"data": [[1.0]] * 101}), 413, "payload_too_large")
        error_of(client.post("/v1/detect", json={"data": [[1.0] * 6] * 3}), 413, "payload_too_large")
        nan = client.post(
            "/v1/detect",
            content=b'{"data": [[1, NaN], [2, 3]]}',
            headers={"content-type": "application/json"},
        )
        error_of(nan, 422, "validation_error")
        inf = client.post(
            "/v1/detect",
            content=b'{"data": [[1, 2], [Infinity, 3]]}',
            headers={"content-type": "application/json"},
        )
        error_of(inf, 422, "validation_error")
        statuses = [client.get("/v1/models") for _ in range(12)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        error = error_of(limited[0], 429, "rate_limited")
        assert int(limited[0].headers["Retry-After"]) >= 1 and error["retry_after"] >= 1
        assert client.get("/health/liveness").status_code == 200


def test_parallel_scores_on_one_model_are_identical(tmp_path):
    import numpy as np

    import adcore

    rows = training_rows(500, 4, seed=7)
    batch = training_rows(200, 4, seed=8)
    with running_server(tmp_path, "--rate-limit", "0", api_key=KEY) as server, server.client() as client:
        fitted = client.post(
            "/v1/models", json={"name": "shared", "data": rows, "algorithm": "core:mahalanobis"}
        )
        assert fitted.status_code == 201, fitted.text

        def score(_: int) -> dict:
            with server.client() as own:
                response = own.post("/v1/models/shared/score", json={"data": batch})
                assert response.status_code == 200, response.text
                return response.json()

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(score, range(20)))
        first = results[0]
        assert all(r["scores"] == first["scores"] and r["labels"] == first["labels"] for r in results)
        assert all(r["model"] == "shared@1" for r in results)
        expected = adcore.load_model("shared@1", store=server.store).score(np.asarray(batch))
        np.testing.assert_allclose(first["scores"], expected.scores, rtol=1e-12)
        metrics = client.get("/metrics").text
        assert (
            'adcore_model_loads_total{algorithm="core:mahalanobis"} 1.0' in metrics
        )  # loaded once for all 20
        assert 'route="/v1/models/{ref}/score",status="200"} 20.0' in metrics


def test_readiness_is_503_when_the_store_is_unreachable(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    server = running_server(tmp_path / "srv", store=str(blocker / "models"), api_key=KEY)
    with server as running, running.client() as client:
        assert client.get("/health/liveness").status_code == 200
        error = error_of(client.get("/health/readiness"), 503, "not_ready")
        assert error["checks"]["store"].startswith("failed: StoreError")
        assert error["checks"]["plugins"].startswith("ok")
        error_of(client.get("/v1/models"), 400, "store")  # the store's own error, its status


ROUTES_PLUGIN = """
import adcore
from fastapi.concurrency import run_in_threadpool

@adcore.hookimpl
def register_routes(app):
    @app.get("/v1/hello/{name}")
    async def hello(name: str):
        shout = await run_in_threadpool(str.upper, name)
        return {"hello": shout}
"""

BROKEN_ROUTES_PLUGIN = """
import adcore

@adcore.hookimpl
def register_routes(app):
    @app.get("/v1/half/done")
    def half():
        return {}
    raise RuntimeError("routes plugin broke")
"""


def test_hook_register_routes(plugin_site, tmp_path):
    """A real third-party plugin (entry point in a dist-info) adds a route, reachable over HTTP
    with the server's auth; a plugin whose hook raises is reported and adds no route."""
    plugin_site.add("adcore-hello", {"hello": "adcore_hello"}, {"adcore_hello": ROUTES_PLUGIN})
    plugin_site.add("adcore-half", {"half": "adcore_half"}, {"adcore_half": BROKEN_ROUTES_PLUGIN})
    env = {
        "PYTHONPATH": os.pathsep.join([str(plugin_site.root), str(REPO)]),
        "ADCORE_DISABLE_PLUGIN_AUTOLOAD": "0",
    }
    with running_server(tmp_path, api_key=KEY, env=env) as server:
        with server.client() as client:
            assert client.get("/v1/hello/world").json() == {"hello": "WORLD"}
            error_of(client.get("/v1/half/done"), 404, "not_found")
            assert "/v1/hello/{name}" in client.get("/openapi.json").json()["paths"]
        error_of(httpx.get(f"{server.url}/v1/hello/world", timeout=30), 401, "unauthorized")
        assert "plugin half: register_routes raised RuntimeError: routes plugin broke" in server.output()


def test_several_workers_serve_requests(tmp_path):
    server = running_server(tmp_path, "--workers", "2", "--rate-limit", "0", api_key=KEY)
    with server as running, running.client() as client:
        for _ in range(6):
            response = client.post("/v1/detect", json={"data": training_rows(30, 2)})
            assert response.status_code == 200, response.text
        assert client.get("/health/readiness").status_code == 200


FAULTY_DETECTORS_PLUGIN = """
import numpy as np
import adcore

class Buggy:
    '''Fails as a bug would: not the user's parameters or data.'''
    def fit(self, X, y=None):
        raise RuntimeError("internal state lost")
    def decision_function(self, X):
        return np.zeros(len(X))

class Picky:
    '''Refuses its parameter as a library does, with a plain ValueError.'''
    def __init__(self, depth=3):
        self.depth = depth
    def fit(self, X, y=None):
        if self.depth < 1:
            raise ValueError(f"The 'depth' parameter of Picky must be >= 1. Got {self.depth} instead.")
        return self
    def decision_function(self, X):
        return np.abs(X).sum(axis=1)

@adcore.hookimpl
def register_detectors(register):
    register("buggy", Buggy, summary="always fails")
    register("picky", Picky, summary="checks depth in fit")
"""


def test_a_library_error_is_a_400_and_a_bug_a_500_on_a_connection_that_lives_on(plugin_site, tmp_path):
    """The issue's case: a detector's own ValueError was a 500, and the client's next request on
    the same keep-alive connection was reset. Now: 400 naming the detector and parameter, and
    a real bug answers 500 (logged) while the connection keeps serving."""
    plugin_site.add("adcore-faulty", {"faulty": "adcore_faulty"}, {"adcore_faulty": FAULTY_DETECTORS_PLUGIN})
    env = {
        "PYTHONPATH": os.pathsep.join([str(plugin_site.root), str(REPO)]),
        "ADCORE_DISABLE_PLUGIN_AUTOLOAD": "0",
    }
    rows = training_rows(40, 2)
    with running_server(tmp_path, env=env) as server, server.client() as client:
        picky = {"algorithm": "faulty:picky", "params": {"depth": 0}, "data": rows}
        bad = client.post("/v1/detect", json=picky)
        error = error_of(bad, 400, "parameter")
        assert "faulty:picky" in error["message"] and "depth" in error["message"]
        ok = client.post("/v1/detect", json={"algorithm": "faulty:picky", "data": rows})
        assert ok.status_code == 200, ok.text
        bug = client.post("/v1/detect", json={"algorithm": "faulty:buggy", "data": rows})
        error_of(bug, 500, "internal_error")
        assert "internal state lost" not in bug.text  # no internals in the answer
        assert client.get("/health/readiness").status_code == 200
        statuses = _statuses_on_one_connection(
            server.url,
            [
                {"algorithm": "faulty:buggy", "data": rows},
                {"algorithm": "faulty:picky", "params": {"depth": 0}, "data": rows},
                {"algorithm": "core:hbos", "data": rows},
            ],
        )
        assert statuses == [500, 400, 200]
    log = server.output()
    assert "RuntimeError: internal state lost" in log  # the bug is in the server log, with its traceback


def _statuses_on_one_connection(url: str, bodies: list[dict]) -> list[int]:
    """POST each body to /v1/detect over one raw keep-alive socket (no client-side reconnects,
    which would hide a connection the server dropped); return the response statuses."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.auto_open = 0  # a dropped connection must fail the test, not be reopened silently
    conn.connect()
    statuses = []
    try:
        for body in bodies:
            headers = {"Content-Type": "application/json"}
            conn.request("POST", "/v1/detect", body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    return statuses
