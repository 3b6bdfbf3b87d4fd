"""The dashboard's "Recent jobs" table in real headless Chromium (embedded jobs, no Redis)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from server_harness import running_server
from test_server_dashboard import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.service
KEY = "jobs-dashboard-key"


def test_dashboard_lists_recent_jobs_with_their_status_and_error(tmp_path, browser):  # noqa: F811
    with running_server(tmp_path / "srv", api_key=KEY) as server, server.client() as client:
        rows = [[float(i), float(i % 4)] for i in range(40)]
        done = client.post("/v1/jobs", json={"kind": "detect", "data": rows}).json()["id"]
        bad = {"kind": "detect", "data": rows, "algorithm": "nope"}
        failed = client.post("/v1/jobs", json=bad).json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and {
            client.get(f"/v1/jobs/{j}").json()["status"] for j in (done, failed)
        } != {"finished", "failed"}:
            time.sleep(0.05)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#auth:not([hidden])")
        page.fill("#api-key", KEY)
        page.click("#auth button[type=submit]")
        page.wait_for_selector("body[data-loaded=true]", timeout=15_000)
        jobs = page.locator("#jobs tbody tr.job-row")
        assert jobs.count() == 2
        text = page.locator("#jobs tbody").inner_text()
        assert done[:12] in text and failed[:12] in text and "finished" in text
        assert "UnknownAlgorithmError" in page.locator("#jobs tbody tr.failed").inner_text()
        assert page.locator("#jobs-empty").is_hidden()
