"""Request limits in-process: the token bucket, body size while streaming, rows and features."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
pytest.importorskip("prometheus_client", reason="the server extra is not installed")

from fastapi.testclient import TestClient
from test_server_app import assert_error

from adcore.server.app import create_app
from adcore.server.limits import TokenBucketLimiter
from adcore.server.settings import ServerSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_bursts_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire("a") == pytest.approx(0.5)  # the next token is due in 1/rate s
    assert bucket.acquire("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") > 0
    clock.now += 60
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled, never above burst
    assert bucket.acquire("a") > 0


def test_token_bucket_forgets_old_clients_and_can_be_off():
    bucket = TokenBucketLimiter(rate=1.0, burst=1, max_clients=2, clock=FakeClock())
    for client in ("a", "b", "c"):
        bucket.acquire(client)
    assert len(bucket._buckets) == 2
    off = TokenBucketLimiter(rate=0, burst=1)
    assert not off.enabled and all(off.acquire("a") == 0.0 for _ in range(100))


def make_client(tmp_path, **limits) -> TestClient:
    settings = ServerSettings(store=str(tmp_path / "models"), **{"rate_limit": 0, **limits})
    return TestClient(create_app(settings))


def test_body_over_the_limit_is_413_from_content_length(tmp_path):
    with make_client(tmp_path, max_body_mb=0.001) as client:  # ~1 KB
        body = b'{"data": [' + b",".join([b"[1.0, 2.0]"] * 200) + b"]}"
        error = assert_error(
            client.post("/v1/detect", content=body, headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
        assert "--max-body-mb" in error["message"]
        small = client.post("/v1/detect", json={"data": [[1.0], [2.0], [3.0]]})
        assert small.status_code == 200


def test_body_over_the_limit_is_413_while_streaming(tmp_path):
    """A chunked body has no Content-Length: the middleware counts chunks as they arrive and
    stops at the first one past the limit (driven at the ASGI level to count the reads)."""
    import anyio

    app = create_app(ServerSettings(store=str(tmp_path / "models"), rate_limit=0, max_body_mb=0.01))
    reads = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b" " * 512, "more_body": reads < 10_000}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/detect",
        "raw_path": b"/v1/detect",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8001),
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert b"payload_too_large" in sent[1]["body"]
    assert reads == int(0.01 * 1024 * 1024 // 512) + 1  # not one chunk more than needed


def test_rows_and_features_limits(tmp_path):
    with make_client(tmp_path, max_rows=10, max_features=3, max_explain_rows=2) as client:
        error = assert_error(client.post("/v1/detect", json={"data": [[1.0]] * 11}), 413, "payload_too_large")
        assert "11 rows" in error["message"] and "--max-rows" in error["message"]
        error = assert_error(
            client.post("/v1/detect", json={"data": [[1.0] * 4] * 2}), 413, "payload_too_large"
        )
        assert "4 features" in error["message"]
        assert client.post("/v1/detect", json={"data": [[1.0, 2.0, 3.0]] * 10}).status_code == 200
        rows = [[float(i), float(i % 3)] for i in range(10)]
        assert client.post("/v1/models", json={"name": "m", "data": rows}).status_code == 201
        assert_error(client.post("/v1/models/m/explain", json={"data": rows[:3]}), 413, "payload_too_large")
        assert client.post("/v1/models/m/explain", json={"data": rows[:2]}).status_code == 200


def test_rate_limit_is_429_with_retry_after(tmp_path):
    with make_client(tmp_path, rate_limit=0.5, rate_burst=2) as client:
        codes = [client.get("/v1/models").status_code for _ in range(2)]
        assert codes == [200, 200]
        limited = client.get("/v1/models")
        error = assert_error(limited, 429, "rate_limited")
        assert limited.headers["Retry-After"] == "2" and error["retry_after"] == 2
        assert client.get("/health/liveness").status_code == 200  # probes are never limited
        assert client.get("/metrics").status_code == 200
