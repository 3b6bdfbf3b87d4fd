"""The REST server at its edges, against a real ``adcore serve`` (issue 15: S1, S2, S4-S6, C6, K8, K9).

Each test is what a hostile or unlucky client did to the server: invented HTTP methods,
forged Host headers, smuggling-shaped framing, absurdly nested JSON, a flood of large
bodies. Raw sockets where the HTTP framing itself is the point, httpx elsewhere.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from server_harness import running_server, training_rows

pytestmark = pytest.mark.service

KEY = "edge-test-key"


def raw_exchange(url: str, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``request`` as-is on a fresh connection; return everything until the server closes
    or goes quiet for a moment after a complete response head."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        sock.settimeout(1.0)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def head_and_body(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def error_of(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type, error
    return error


def test_liveness_answers_while_large_bodies_flood_the_server(tmp_path):
    """K9: 200 concurrent 1 MB bodies; liveness must not queue behind their parsing."""
    rows = training_rows(20_000, 4)
    body = json.dumps({"data": rows}).encode()
    assert len(body) > 800_000
    # --max-rows 10: every flood request is parsed in full, then refused (413), so the
    # server's time goes to parsing bodies, the work that used to run on the event loop
    with running_server(tmp_path, "--rate-limit", "0", "--max-rows", "10") as server:
        parts = urlsplit(server.url)
        latencies: list[float] = []
        done = threading.Event()

        def probe() -> None:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            while not done.is_set():
                started = time.perf_counter()
                conn.request("GET", "/health/liveness")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)
            conn.close()

        def post(_: int) -> int:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            conn.request("POST", "/v1/detect", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            conn.close()
            return response.status

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            with ThreadPoolExecutor(max_workers=200) as pool:
                statuses = list(pool.map(post, range(200)))
        finally:
            done.set()
            prober.join()
        assert set(statuses) == {413}, statuses
        assert len(latencies) >= 5
        assert max(latencies) < 1.0, f"liveness took up to {max(latencies):.2f} s"


def test_made_up_methods_are_authenticated_rate_limited_and_share_one_label(tmp_path):
    """S1: invented methods and unknown paths need the key, count against the rate limit,
    and add no metric labels of their own."""
    import httpx

    with running_server(tmp_path, "--rate-limit", "0.01", "--burst", "300", api_key=KEY) as server:
        with server.client() as client:
            baseline = len(client.get("/metrics").text.splitlines())
            for i in range(100):
                anonymous = httpx.request(f"FOO{i}", f"{server.url}/v1/models")
                error_of(anonymous, 401, "unauthorized")
                error_of(client.request(f"BAR{i}", "/v1/models"), 405, "method_not_allowed")
                error_of(client.request("GET", f"/no/such/route/{i}"), 404, "not_found")
            metrics = client.get("/metrics").text
        assert "FOO" not in metrics and "BAR" not in metrics and "/no/such" not in metrics
        assert 'method="other",route="/v1/models",status="405"} 100.0' in metrics
        assert 'method="other",route="<unmatched>",status="401"} 100.0' in metrics
        label_sets = [line for line in metrics.splitlines() if line.startswith("adcore_http_requests_total{")]
        assert len(label_sets) <= 5, label_sets  # liveness, /metrics, 401, 405, 404: not one per method
        assert len(metrics.splitlines()) - baseline < 200  # 100 methods once grew it by ~2,000 lines
        # the 300 requests above drained the burst: invented methods are now refused like any other
        limited = httpx.request("FOO", f"{server.url}/v1/models", headers=server.headers)
        assert error_of(limited, 429, "rate_limited")["retry_after"] >= 1
        error_of(httpx.get(f"{server.url}/unknown", headers=server.headers), 429, "rate_limited")
        assert httpx.get(f"{server.url}/health/liveness").status_code == 200  # probes are never limited


def test_trailing_slash_with_a_forged_host_is_not_redirected(tmp_path):
    """S4: no redirect built from the Host header, and no answer past the key check without a key."""
    with running_server(tmp_path, "--rate-limit", "0", api_key=KEY) as server:
        anonymous = raw_exchange(server.url, b"GET /v1/models/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        status, headers, body = head_and_body(anonymous)
        assert status == 401 and "location" not in headers, anonymous
        keyed = raw_exchange(
            server.url,
            b"GET /v1/models/ HTTP/1.1\r\nHost: evil.example\r\n"
            + f"Authorization: Bearer {KEY}\r\n\r\n".encode(),
        )
        status, headers, body = head_and_body(keyed)
        assert status == 404 and "location" not in headers, keyed
        assert b"evil.example" not in keyed
        assert json.loads(body)["error"]["type"] == "not_found"


def test_content_length_with_chunked_transfer_encoding_is_refused(tmp_path):
    """S6: both framing headers at once is a request-smuggling shape: 400, then the connection closes."""
    with running_server(tmp_path, "--rate-limit", "0", api_key=KEY) as server:
        request = (
            b"POST /v1/detect HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {KEY}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        response = raw_exchange(server.url, request)
        status, headers, body = head_and_body(response)
        assert status == 400, response
        assert headers.get("connection") == "close"
        assert json.loads(body[: int(headers["content-length"])])["error"]["type"] == "bad_request"
        assert response.count(b"HTTP/1.1 ") == 1  # the smuggled second request was never answered


def test_deeply_nested_params_are_a_422(tmp_path):
    """C6: nesting the JSON parser accepts (1,000 levels) and nesting it does not (2,000) are 422s."""
    with running_server(tmp_path, "--rate-limit", "0", api_key=KEY) as server, server.client() as client:
        for depth in (33, 1_000, 2_000):
            nested = "[" * depth + "]" * depth
            body = '{"data": [[1.0], [2.0], [3.0]], "params": {"a": ' + nested + "}}"
            response = client.post("/v1/detect", content=body, headers={"content-type": "application/json"})
            error_of(response, 422, "validation_error")
        ok = client.post("/v1/detect", json={"data": [[1.0], [2.0], [3.0], [4.0]], "params": {}})
        assert ok.status_code == 200, ok.text
        assert client.get("/health/liveness").status_code == 200
    assert "Traceback" not in server.output()


def test_head_and_options_answer_where_the_routes_are(tmp_path):
    """K8: HEAD wherever GET works, OPTIONS 204 with the path's real methods, 405 with a true Allow."""
    with running_server(tmp_path, "--rate-limit", "0", api_key=KEY) as server, server.client() as client:
        got, head = client.get("/v1/algorithms"), client.head("/v1/algorithms")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert client.head("/health/liveness").status_code == 200
        assert client.head("/").status_code == 200
        expected = {
            "/v1/models": "GET, HEAD, OPTIONS, POST",
            "/v1/models/m@1": "DELETE, OPTIONS",
            "/v1/models/m/score": "OPTIONS, POST",
            "/v1/detect": "OPTIONS, POST",
            "/health/liveness": "GET, HEAD, OPTIONS",
        }
        for path, allow in expected.items():
            options = client.options(path)
            assert (options.status_code, options.headers.get("allow")) == (204, allow), path
        error_of(client.options("/no/such/route"), 404, "not_found")
        wrong = client.put("/v1/models/m@1")
        error_of(wrong, 405, "method_not_allowed")
        assert wrong.headers["allow"] == "DELETE, OPTIONS"
        import httpx

        assert httpx.head(f"{server.url}/v1/models").status_code == 401  # HEAD needs the key like GET


def test_openapi_states_the_servers_real_limits(tmp_path):
    """K8: a client generating requests from the schema learns the row, feature and body limits."""
    args = ("--rate-limit", "0", "--max-rows", "123", "--max-features", "7", "--max-explain-rows", "5")
    with running_server(tmp_path, *args, api_key=KEY) as server, server.client() as client:
        schema = client.get("/openapi.json").json()
    models = schema["components"]["schemas"]
    limits = {"DetectRequest": 123, "FitRequest": 123, "ScoreRequest": 123, "ExplainRequest": 5}
    for name, rows in limits.items():
        data = models[name]["properties"]["data"]
        assert (data["maxItems"], data["items"]["maxItems"]) == (rows, 7), name
    body = schema["paths"]["/v1/detect"]["post"]["requestBody"]
    assert body["x-max-body-bytes"] == 10 * 1024 * 1024


def test_http_errors_name_neither_the_store_nor_server_paths(tmp_path):
    """S2: a missing model's 404 says it is not in the store, without the store's location."""
    store = tmp_path / "secret-location" / "models"
    server = running_server(tmp_path, "--rate-limit", "0", api_key=KEY, store=str(store))
    with server as running, running.client() as client:
        client.post("/v1/models", json={"name": "m", "data": training_rows(50, 2)}).raise_for_status()
        responses = [
            client.post("/v1/models/nosuch/score", json={"data": [[1.0, 2.0]]}),
            client.post("/v1/models/m@7/score", json={"data": [[1.0, 2.0]]}),
            client.delete("/v1/models/nosuch"),
        ]
    for response in responses:
        error = error_of(response, 404, "model_not_found")
        assert "secret-location" not in response.text and str(tmp_path) not in response.text
        assert "in the model store" in error["message"], error


@pytest.mark.parametrize("host", ["127.example.com", "0.0.0.0", "::", "10.0.0.1", "127.0.0.1.nip.io"])
def test_serve_refuses_a_non_loopback_bind_without_a_key(tmp_path, host):
    """S5: exit 2 with one line, before anything is bound; ``127.example.com`` is not loopback."""
    import os
    import subprocess
    import sys

    from server_harness import _base_env

    env = {k: v for k, v in _base_env(tmp_path, None).items() if k != "ADCORE_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", "serve", "--host", host, "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.fspath(tmp_path),
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--insecure-no-key" in lines[0] and "ADCORE_API_KEY" in lines[0], lines


def test_loopback_is_decided_by_parsing_the_address():
    """S5: ``ipaddress`` decides; ``--insecure-no-key`` turns the refusal into a warning."""
    from adcore.errors import ParameterError
    from adcore.server.launch import check_bind
    from adcore.server.settings import ServerSettings, is_loopback_host

    for host in ("127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"):
        assert is_loopback_host(host), host
    for host in ("127.example.com", "0.0.0.0", "::", "", "192.168.1.2", "localhost.evil.example"):
        assert not is_loopback_host(host), host
    with pytest.raises(ParameterError, match="--insecure-no-key"):
        check_bind(ServerSettings(host="0.0.0.0"))
    assert "without ADCORE_API_KEY" in check_bind(ServerSettings(host="0.0.0.0"), insecure_no_key=True)
    assert check_bind(ServerSettings(host="0.0.0.0", api_key="k")) is None
    assert check_bind(ServerSettings(host="127.0.0.1")) is None


def test_a_request_starts_no_processes_of_its_own(tmp_path):
    """S3: one request choosing the ensemble's process backend spawned ten workers (2.3 GB) past
    the server's concurrency limit, and they outlived the server. Processes are refused with a
    400 that says why, and an ensemble request leaves the server without child processes."""
    import psutil

    rows = training_rows(40, 2)
    ensemble = "core:hbos,core:mad"
    env = {"ADCORE_DISABLE_PLUGIN_AUTOLOAD": "0"}
    with running_server(tmp_path, env=env) as server, server.client() as client:
        refused = [
            {"algorithm": ensemble, "params": {"backend": "processes"}},
            {"algorithm": ensemble, "params": {"jobs": 8}},
            {"algorithm": "pyod:knn", "params": {"n_jobs": -1}},
            {"algorithm": "core:hbos,pyod:knn", "params": {"pyod:knn.n_jobs": 4}},
        ]
        for extra in refused:
            for route, body in (("/v1/detect", {}), ("/v1/models", {"name": "p"})):
                response = client.post(route, json={**extra, **body, "data": rows})
                assert response.status_code == 400, (extra, route, response.text)
                assert "not available over HTTP" in response.json()["error"]["message"]
        ok = client.post("/v1/detect", json={"algorithm": ensemble, "params": {"jobs": -1}, "data": rows})
        assert ok.status_code == 200, ok.text
        assert psutil.Process(server.process.pid).children(recursive=True) == []
