"""The REST app in-process (FastAPI's TestClient): endpoints, error shape, parity with the CLI's services."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
pytest.importorskip("prometheus_client", reason="the server extra is not installed")

from fastapi.testclient import TestClient
from server_harness import training_rows

import adcore
from adcore.server.app import create_app
from adcore.server.schemas import DetectionResponse, ErrorResponse
from adcore.server.settings import ServerSettings


@pytest.fixture
def settings(tmp_path) -> ServerSettings:
    return ServerSettings(store=str(tmp_path / "models"), rate_limit=0, drift_window=50)


@pytest.fixture
def client(settings) -> TestClient:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_error(response, status: int, error_type: str) -> dict:
    """Every failure has the one shape: {"error": {"type", "message"}}."""
    assert response.status_code == status, response.text
    body = response.json()
    ErrorResponse.model_validate(body)
    assert body["error"]["type"] == error_type, body
    assert body["error"]["message"]
    return body["error"]


def post_raw(client: TestClient, path: str, raw: bytes):
    return client.post(path, content=raw, headers={"content-type": "application/json"})


# ------------------------------------------------------------------------- detect
def test_detect_matches_the_python_api(client):
    rows = training_rows(200, 3)
    response = client.post("/v1/detect", json={"algorithm": "core:hbos", "data": rows, "seed": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    DetectionResponse.model_validate(body)
    expected = adcore.detect(np.asarray(rows), algo="core:hbos", seed=1)
    np.testing.assert_allclose(body["scores"], expected.scores)
    assert body["labels"] == expected.labels.tolist()
    assert body["threshold"] == pytest.approx(expected.threshold)
    assert [a["index"] for a in body["anomalies"]] == [a.index for a in expected.anomalies]
    assert body["n_anomalies"] == expected.n_anomalies and body["model"] is None


def test_detect_with_params_contamination_and_feature_names(client):
    rows = training_rows(100, 2)
    response = client.post(
        "/v1/detect",
        json={
            "algorithm": "hbos",
            "params": {"n_bins": 5},
            "contamination": 0.05,
            "data": rows,
            "feature_names": ["a", "b"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["feature_names"] == ["a", "b"]
    assert body["n_anomalies"] == 5
    assert body["params"]["n_bins"] == 5


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"data": [[1, NaN], [2, 3]]}', "NaN and Infinity"),
        (b'{"data": [[1, Infinity], [2, 3]]}', "NaN and Infinity"),
        (b'{"data": [[1, -Infinity], [2, 3]]}', "NaN and Infinity"),
        (b'{"data": [[1, 1e999], [2, 3]]}', "infinity"),
        (b'{"data": [[1, 2], [2, 3]], "params": {"n_bins": NaN}}', "NaN and Infinity"),
        (b'{"data": [[1, 2], [2, 3]], "contamination": NaN}', "NaN and Infinity"),
    ],
)
def test_nan_and_infinity_are_refused_with_422(client, raw, where):
    error = assert_error(post_raw(client, "/v1/detect", raw), 422, "validation_error")
    assert where.lower() in error["message"].lower()


def test_non_finite_values_are_refused_even_by_the_stdlib_parser(client, monkeypatch):
    """Without orjson the stdlib parses 1e999 as inf: the matrix check still refuses it."""
    from adcore.io import jsonio

    monkeypatch.setattr(jsonio, "loads", jsonio._std_loads)
    error = assert_error(
        post_raw(client, "/v1/detect", b'{"data": [[1, 1e999], [2, 3]]}'), 422, "validation_error"
    )
    assert "row 0, feature 1" in error["message"]
    error = assert_error(
        post_raw(client, "/v1/detect", b'{"data": [[1, NaN], [2, 3]]}'), 422, "validation_error"
    )
    error = assert_error(
        post_raw(client, "/v1/detect", b'{"data": [[1, 2], [2, 3]], "params": {"x": [1e999]}}'),
        422,
        "validation_error",
    )
    assert "params.x[0]" in error["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"data": [[1, 2], [3]]}, "row 1 has 1 values"),
        ({"data": [[1, "a"], [3, 4]]}, "row 0, feature 1: str is not a number"),
        ({"data": [[True, False], [True, True]]}, "bool is not a number"),
        ({"data": []}, "non-empty"),
        ({"data": [[], []]}, "at least one feature"),
        ({"data": [[1, 2], [3, 4]], "feature_names": ["a"]}, "1 names for 2 features"),
        ({"data": [[1, 2]], "contamination": 0.9}, "contamination"),
        ({"data": [[1, 2]], "algoritm": "hbos"}, "algoritm"),
        ({"rows": [[1, 2]]}, "data"),
    ],
)
def test_malformed_bodies_are_422_with_one_shape(client, body, needle):
    error = assert_error(client.post("/v1/detect", json=body), 422, "validation_error")
    assert needle in json.dumps(error)


def test_invalid_json_is_422(client):
    error = assert_error(post_raw(client, "/v1/detect", b'{"data": [[1, 2]'), 422, "validation_error")
    assert "invalid JSON" in error["message"]


def test_core_errors_keep_their_http_status(client):
    assert_error(
        client.post("/v1/detect", json={"algorithm": "nope", "data": [[1], [2]]}), 404, "unknown_algorithm"
    )
    assert_error(client.post("/v1/detect", json={"data": [[1, 2]]}), 400, "data")  # one row: can't fit
    error = assert_error(
        client.post("/v1/detect", json={"data": [[1], [2], [3]], "params": {"n_binz": 3}}), 400, "parameter"
    )
    assert "n_bins" in error["message"]  # the close match
    assert_error(client.post("/v1/detect", json={"data": [[1], [2]], "threshold": "bogus"}), 400, "parameter")


def test_unknown_route_and_method_have_the_shape_too(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/detect"), 405, "method_not_allowed")


def test_a_bug_is_a_500_without_internals(settings, monkeypatch):
    from adcore.server import services

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(services, "detect", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        error = assert_error(client.post("/v1/detect", json={"data": [[1], [2]]}), 500, "internal_error")
    assert "secret" not in error["message"]


# ------------------------------------------------------------------------- algorithms
def test_algorithms_list_with_schemas(client):
    body = client.get("/v1/algorithms").json()
    by_name = {a["name"]: a for a in body["algorithms"]}
    assert {"core:hbos", "core:mad", "core:mahalanobis"} <= set(by_name)
    hbos = by_name["core:hbos"]
    assert hbos["schema"]["properties"]["n_bins"]
    assert any(p["name"] == "n_bins" for p in hbos["parameters"])
    one = client.get("/v1/algorithms/hbos").json()
    assert one["name"] == "core:hbos" and "n_bins" in one["schema"]["properties"]
    assert_error(client.get("/v1/algorithms/hbso"), 404, "unknown_algorithm")


# ------------------------------------------------------------------------- models
def fit(client, name="payments", rows=None, **extra):
    rows = rows if rows is not None else training_rows(300, 3)
    response = client.post("/v1/models", json={"name": name, "data": rows, "seed": 0, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_model_lifecycle_fit_list_score_explain_delete(client, settings):
    rows = training_rows(300, 3)
    first = fit(client, rows=rows, feature_names=["a", "b", "c"])
    assert first["ref"] == "payments@1" and first["n_features"] == 3 and "artifact" not in first
    second = fit(client, rows=rows, feature_names=["a", "b", "c"], algorithm="core:mad")
    assert second["ref"] == "payments@2"
    listed = client.get("/v1/models").json()["models"]
    assert [m["ref"] for m in listed] == ["payments@1", "payments@2"]
    assert [m["ref"] for m in client.get("/v1/models", params={"name": "other"}).json()["models"]] == []

    scored = client.post(
        "/v1/models/payments@1/score", json={"data": rows[:20], "feature_names": ["a", "b", "c"]}
    )
    assert scored.status_code == 200, scored.text
    body = scored.json()
    DetectionResponse.model_validate(body)
    stored = adcore.load_model("payments@1", store=settings.store).score(np.asarray(rows[:20]))
    np.testing.assert_allclose(body["scores"], stored.scores)
    assert body["model"] == "payments@1" and body["threshold"] == pytest.approx(first["threshold"])
    latest = client.post("/v1/models/payments/score", json={"data": rows[:5]}).json()
    assert latest["model"] == "payments@2" and latest["algorithm"] == "core:mad"

    explained = client.post("/v1/models/payments@1/explain", json={"data": rows[:3], "top": 2})
    assert explained.status_code == 200, explained.text
    explanations = explained.json()["explanations"]
    assert len(explanations) == 3 and all(len(e) == 2 for e in explanations)
    assert set(explanations[0]) <= {"a", "b", "c"}

    assert [m["ref"] for m in client.delete("/v1/models/payments@latest").json()["removed"]] == ["payments@2"]
    assert_error(client.post("/v1/models/payments@2/score", json={"data": rows[:5]}), 404, "model_not_found")
    fit(client, rows=rows)
    assert [
        m["ref"] for m in client.delete("/v1/models/payments", params={"version": 1}).json()["removed"]
    ] == ["payments@1"]
    assert [m["ref"] for m in client.delete("/v1/models/payments").json()["removed"]] == ["payments@3"]
    assert client.get("/v1/models").json()["models"] == []
    assert_error(client.delete("/v1/models/payments"), 404, "model_not_found")


def test_model_errors(client):
    rows = training_rows(100, 3)
    fit(client, rows=rows, feature_names=["a", "b", "c"])
    error = assert_error(
        client.post("/v1/models/payments/score", json={"data": rows[:5], "feature_names": ["a", "c", "b"]}),
        400,
        "schema_mismatch",
    )
    assert "order" in error["message"]
    assert_error(
        client.post("/v1/models/payments/score", json={"data": [[1.0, 2.0]]}), 400, "schema_mismatch"
    )
    assert_error(client.post("/v1/models/nobody/score", json={"data": [[1.0]]}), 404, "model_not_found")
    assert_error(client.post("/v1/models/bad%20name/score", json={"data": [[1.0]]}), 400, "parameter")
    assert_error(client.delete("/v1/models/payments@1", params={"version": 2}), 400, "parameter")
    assert_error(client.post("/v1/models", json={"name": "../etc", "data": rows}), 422, "validation_error")


def test_a_tampered_artifact_is_409_and_never_loaded(client, settings):
    from pathlib import Path

    fit(client, rows=training_rows(60, 2))
    artifact = next((Path(settings.store) / "artifacts").rglob("*.pkl"))
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    error = assert_error(
        client.post("/v1/models/payments/score", json={"data": [[1.0, 2.0]]}), 409, "integrity"
    )
    assert "checksum" in error["message"]


def test_no_route_accepts_a_file_path(client, tmp_path):
    """Models come only from the server's store: a path in the body is an unknown field."""
    assert_error(
        client.post("/v1/detect", json={"path": str(tmp_path), "data": [[1], [2]]}), 422, "validation_error"
    )
    assert_error(
        client.post("/v1/models/x/score", json={"artifact": "/etc/passwd", "data": [[1]]}),
        422,
        "validation_error",
    )


# ------------------------------------------------------------------------- monitoring
def test_metrics_count_requests_rows_and_model_loads_by_algorithm(client):
    rows = training_rows(120, 2)
    client.post("/v1/detect", json={"data": rows})
    fit(client, rows=rows)
    for _ in range(3):
        client.post("/v1/models/payments/score", json={"data": rows[:10]})
    text = client.get("/metrics").text
    assert 'adcore_http_requests_total{method="POST",route="/v1/models/{ref}/score",status="200"} 3.0' in text
    assert 'adcore_rows_scored_total{algorithm="core:hbos"} 150.0' in text  # 120 detected + 3 x 10 scored
    assert 'adcore_model_loads_total{algorithm="core:hbos"} 1.0' in text  # loaded once, then cached
    assert 'adcore_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/detect"}' in text
    assert "adcore_anomalies_total" in text


def test_recent_detections_ring_is_bounded_and_has_histograms(tmp_path):
    settings = ServerSettings(store=str(tmp_path / "m"), rate_limit=0, recent=3)
    with TestClient(create_app(settings)) as client:
        for n in (20, 30, 40, 50):
            client.post("/v1/detect", json={"data": training_rows(n, 2)})
        detections = client.get("/v1/detections").json()["detections"]
    assert [d["n_samples"] for d in detections] == [50, 40, 30]
    hist = detections[0]["histogram"]
    assert len(hist["counts"]) == 30 and len(hist["edges"]) == 31 and sum(hist["counts"]) == 50
    assert hist["edges"][0] <= detections[0]["threshold"] <= hist["edges"][-1]


def test_drift_on_a_stored_models_scores_is_reported(client):
    fit(client, rows=training_rows(400, 3, seed=1))
    calm = client.post("/v1/models/payments/score", json={"data": training_rows(60, 3, seed=2)})
    assert calm.status_code == 200
    assert client.get("/v1/drift").json()["events"] == []
    client.post("/v1/models/payments/score", json={"data": training_rows(100, 3, seed=3, shift=4.0)})
    events = client.get("/v1/drift").json()["events"]
    assert events, "a 4-sigma shift must be detected"
    event = events[0]
    assert event["type"] == "drift.detected" and event["model"] == "payments@1"
    assert event["detector"] == "ks" and event["on"] == "scores" and event["stream"] == "serve:payments@1"
    assert (
        'adcore_drift_events_total{algorithm="core:hbos",detector="ks",on="scores"}'
        in client.get("/metrics").text
    )


def test_events_reach_the_chosen_monitors(tmp_path, monkeypatch):
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("ADCORE_JSONLOG_PATH", str(log))
    settings = ServerSettings(store=str(tmp_path / "m"), rate_limit=0, monitors=("jsonlog",))
    with TestClient(create_app(settings)) as client:
        client.post("/v1/detect", json={"data": training_rows(50, 2)})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    *anomalies, completed = lines  # the request's anomalies, then its detection.completed
    assert completed["event"] == "detection.completed" and completed["records"] == 50
    assert completed["stream"] == "serve:detect" and completed["level"] == "info"
    assert len(anomalies) == completed["anomalies"] > 0
    assert {a["event"] for a in anomalies} == {"anomaly.detected"}


# ------------------------------------------------------------------------- health, dashboard
def test_health_probes(client):
    assert client.get("/health/liveness").json() == {"status": "ok"}
    ready = client.get("/health/readiness").json()
    assert ready["status"] == "ready" and ready["checks"]["store"] == "ok"


def test_readiness_is_503_when_the_store_cannot_be_opened(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = ServerSettings(store=str(blocker / "models"), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        error = assert_error(client.get("/health/readiness"), 503, "not_ready")
        assert error["checks"]["store"].startswith("failed") and error["checks"]["plugins"].startswith("ok")
        assert client.get("/health/liveness").status_code == 200


def test_dashboard_files_are_served_with_a_strict_csp(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/dashboard/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    assert client.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/style.css").status_code == 200
    assert_error(client.get("/dashboard/..%2Fapp.py"), 404, "not_found")
    assert_error(client.get("/dashboard/index.py"), 404, "not_found")


def test_openapi_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/detect",
        "/v1/algorithms",
        "/v1/algorithms/{name}",
        "/v1/models",
        "/v1/models/{ref}",
        "/v1/models/{ref}/score",
        "/v1/models/{ref}/explain",
        "/v1/detections",
        "/v1/drift",
        "/health/liveness",
        "/health/readiness",
        "/metrics",
    } <= set(paths)


# ------------------------------------------------------------------------- plugin routes
def test_plugin_routes_are_added_and_a_failing_hook_adds_nothing(settings):
    from adcore.plugins import PluginHost

    class Good:
        @adcore.hookimpl
        def register_routes(self, app):
            @app.get("/v1/good/ping")
            def ping():
                return {"pong": True}

    class Broken:
        @adcore.hookimpl
        def register_routes(self, app):
            @app.get("/v1/broken/half")
            def half():
                return {}

            raise RuntimeError("boom")

    host = PluginHost(autoload=False)
    host.load()
    host.add_plugin(Good(), "good")
    host.add_plugin(Broken(), "broken")
    with TestClient(create_app(settings, host=host)) as client:
        assert client.get("/v1/good/ping").json() == {"pong": True}
        assert_error(client.get("/v1/broken/half"), 404, "not_found")
    info = {p.name: p for p in host.plugins()}
    assert any("register_routes raised RuntimeError: boom" in e for e in info["broken"].errors)
    assert info["good"].ok
