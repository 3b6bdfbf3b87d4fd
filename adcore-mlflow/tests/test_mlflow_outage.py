"""The ``mlflow://`` store when the tracking server goes away and comes back (issue 19).

A real ``mlflow server`` is stopped by PID under an open store and started again on the same
port and database: calls made meanwhile fail as ``StoreUnavailableError`` (503 over HTTP)
within seconds rather than MLflow's minutes of retries, the ``mlflow`` circuit breaker opens
and refuses at once, and the same store object works again after the restart with every
model still there.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from mlflow_servers import start_mlflow_server, stop_server

pytestmark = pytest.mark.service


@pytest.fixture
def fast_breaker(monkeypatch: pytest.MonkeyPatch):
    from adcore.services import resilience

    monkeypatch.setenv("ADCORE_BREAKER_FAILURES", "2")
    monkeypatch.setenv("ADCORE_BREAKER_RESET_S", "2")
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    resilience.forget_dependencies()
    yield
    resilience.forget_dependencies()


def test_a_stopped_tracking_server_fails_fast_opens_the_breaker_and_the_store_recovers(
    tmp_path: Path, fast_breaker
):
    import adcore
    from adcore.errors import StoreUnavailableError
    from adcore.services import resilience
    from adcore.services.registry import open_store

    server = start_mlflow_server(tmp_path)
    try:
        url = f"mlflow://127.0.0.1:{server.port}"
        X = np.random.default_rng(0).normal(size=(200, 3))
        adcore.fit(X, algo="core:hbos", name="m", store=url, seed=1)
        store = open_store(url)
        before = [(r.name, r.version, r.sha256) for r in store.list()]
        assert [v for _, v, _ in before] == [1]

        stop_server(server)
        failures = []
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as caught:
                store.list()
            failures.append(time.monotonic() - started)
            assert caught.value.http_status == 503
        assert max(failures) < 30  # MLflow's own defaults would retry for about four minutes
        assert f"mlflow at 127.0.0.1:{server.port} is unavailable" in str(caught.value)
        (dependency,) = [d for d in resilience.dependencies() if d.kind == "mlflow"]
        assert dependency.state == resilience.OPEN
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="circuit open after repeated failures"):
            store.get("m")
        assert time.monotonic() - started < 0.5  # refused without touching the network

        server = start_mlflow_server(tmp_path, port=server.port)
        time.sleep(2.1)  # the breaker's reset time: the next call is the trial
        after = [(r.name, r.version, r.sha256) for r in store.list()]
        assert after == before
        assert dependency.state == resilience.CLOSED
        assert store.get("m").version == 1
    finally:
        stop_server(server)
