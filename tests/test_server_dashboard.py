"""The dashboard in real headless Chromium against a real ``adcore serve``.

After a fit, some detections and a drifting batch, the page must show the model row, a
30-bar score histogram whose bars add up to the selected detection's rows, the threshold
marker where the threshold is, and the drift event. The server has an API key, so the
page first asks for it: the test types it in, as a person would.

Chromium is Debian's (``scripts/system-deps.sh`` installs it); Playwright only drives it
(``executable_path``), it never downloads a browser.
"""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")  # the tox env of the bare core

# with the server extra installed, a missing test extra is a failure, not a skip
from playwright import sync_api
from server_harness import running_server, training_rows

pytestmark = pytest.mark.service

KEY = "dashboard-key"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: run scripts/system-deps.sh (apt-get install chromium)")
    return path


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


def test_dashboard_shows_models_detections_histogram_threshold_and_drift(tmp_path, browser):
    with running_server(tmp_path, "--rate-limit", "0", api_key=KEY) as server, server.client() as client:
        assert (
            client.post(
                "/v1/models", json={"name": "payments", "data": training_rows(400, 3, seed=1)}
            ).status_code
            == 201
        )
        for seed in (2, 3):
            assert (
                client.post("/v1/detect", json={"data": training_rows(120, 3, seed=seed)}).status_code == 200
            )
        client.post(
            "/v1/models/payments/score", json={"data": training_rows(80, 3, seed=4)}
        ).raise_for_status()
        client.post(
            "/v1/models/payments/score", json={"data": training_rows(250, 3, seed=5, shift=4.0)}
        ).raise_for_status()
        latest = client.get("/v1/detections").json()["detections"][0]
        assert client.get("/v1/drift").json()["events"], "the shifted batch must drift"

        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: errors.append(msg.text) if msg.type == "error" and "401" not in msg.text else None,
        )
        page.goto(server.url + "/")
        page.wait_for_selector("#auth:not([hidden])")  # no key yet: the page asks for it
        page.fill("#api-key", KEY)
        page.click("#auth button[type=submit]")
        page.wait_for_selector("body[data-loaded=true]", timeout=15_000)

        rows = page.locator("#models tbody tr.model-row")
        assert rows.count() == 1
        assert rows.first.get_attribute("data-ref") == "payments@1"
        assert "core:hbos" in rows.first.inner_text()

        assert page.locator("#detections li.detection").count() == 4
        assert page.locator("#detections li.selected").get_attribute("data-id") == latest["id"]
        bars = page.locator("#histogram rect.bar")
        assert bars.count() == 30
        counts = [int(c) for c in bars.evaluate_all("els => els.map(e => e.getAttribute('data-count'))")]
        assert sum(counts) == latest["n_samples"] == 250
        heights = bars.evaluate_all("els => els.map(e => e.getBBox().height)")
        assert max(heights) > 100 and sum(h > 0 for h in heights) >= 3
        marker = page.locator("#histogram line.threshold")
        assert marker.count() == 1
        assert float(marker.get_attribute("data-threshold")) == pytest.approx(latest["threshold"])
        edges = latest["histogram"]["edges"]
        expected_x = 44 + (latest["threshold"] - edges[0]) / (edges[-1] - edges[0]) * (640 - 44 - 16)
        assert float(marker.get_attribute("x1")) == pytest.approx(expected_x, abs=0.01)
        assert "threshold" in page.locator("#histogram text.threshold-label").text_content()

        drift = page.locator("#drift tbody tr.drift-row")
        assert drift.count() >= 1
        assert "payments@1" in drift.first.inner_text() and "ks" in drift.first.inner_text()
        assert page.locator("#drift-empty").is_hidden()

        page.locator("#detections li.detection").nth(3).click()  # the oldest: a 120-row detect
        page.wait_for_selector("#detections li.selected >> nth=0")
        counts = page.locator("#histogram rect.bar").evaluate_all(
            "els => els.map(e => +e.getAttribute('data-count'))"
        )
        assert sum(counts) == 120
        assert not errors, errors
