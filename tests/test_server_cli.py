"""``adcore serve`` as a command: the missing-extra error, its options, settings for workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

BLOCKER = "raise ImportError('blocked by the test: the server extra is not installed')\n"


def run_adcore(*args: str, pythonpath: list[str] | None = None, env: dict[str, str] | None = None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    full["PYTHONPATH"] = os.pathsep.join([*(pythonpath or []), str(REPO)])
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn", "prometheus_client"])
def test_serve_without_the_server_extra_exits_2_with_the_pip_command(tmp_path, missing):
    (tmp_path / f"{missing}.py").write_text(BLOCKER)  # shadows the installed package, if any
    proc = run_adcore("serve", "--port", "1", pythonpath=[str(tmp_path)])
    assert proc.returncode == 2, proc.stderr
    assert "adcore serve needs the server extra: pip install 'adcore[server]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_other_commands_work_without_the_server_extra(tmp_path):
    for name in ("fastapi", "uvicorn", "prometheus_client", "starlette"):
        (tmp_path / f"{name}.py").write_text(BLOCKER)
    proc = run_adcore("algos", "--json", pythonpath=[str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert any(row["name"] == "core:hbos" for row in json.loads(proc.stdout))


def test_serve_help_lists_the_options():
    proc = run_adcore("serve", "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    for option in (
        "--host",
        "--port",
        "--workers",
        "--store",
        "--max-body-mb",
        "--max-rows",
        "--max-features",
        "--rate-limit",
        "--burst",
        "--concurrency",
        "--monitor",
    ):
        assert option in proc.stdout


def test_bad_settings_are_a_usage_error():
    proc = run_adcore("serve", "--max-rows", "0", "--port", "1")
    assert proc.returncode == 2
    assert "max_rows=0" in proc.stderr


def test_settings_travel_to_workers_without_the_key():
    from adcore.server.settings import SETTINGS_ENV, ServerSettings

    settings = ServerSettings(
        port=9, workers=3, store="/tmp/x", max_rows=7, monitors=("jsonlog",), api_key="k"
    )
    encoded = settings.to_env()
    assert "k" not in json.loads(encoded).values() and "api_key" not in encoded
    again = ServerSettings.from_env({SETTINGS_ENV: encoded, "ADCORE_API_KEY": "k2"})
    assert again == settings.replace(api_key="k2")
    assert "k2" not in repr(again)
    assert ServerSettings.from_env({}).host == "127.0.0.1"  # loopback unless told otherwise
    assert not ServerSettings(host="0.0.0.0").is_loopback and ServerSettings().is_loopback
