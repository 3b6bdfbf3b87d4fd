"""Cheap discovery: listing detectors, plugins and schemes never imports MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import contextlib, io, json, sys
from adcore.cli.main import run_cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = run_cli(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def probe(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_listing_detectors_imports_no_mlflow():
    result = probe("algos", "--json")
    assert result["code"] == 0
    assert not [m for m in result["modules"] if m.split(".")[0] == "mlflow"]


def test_listing_plugins_shows_mlflow_ok_without_importing_it():
    result = probe("plugins", "--json")
    assert result["code"] == 0
    mine = [p for p in json.loads(result["out"]) if p["name"] == "mlflow"]
    assert mine and not mine[0].get("errors"), mine
    assert not [m for m in result["modules"] if m.split(".")[0] == "mlflow"]
