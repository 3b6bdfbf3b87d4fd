"""Listing PyOD's detectors is cheap: no PyOD, no scikit-learn, whatever else is installed."""

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
HEAVY = {"pyod", "sklearn", "scipy", "numba", "torch", "numpy"}


def probe(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_listing_with_every_plugin_imports_neither_pyod_nor_sklearn():
    result = probe("algos", "--json")
    assert result["code"] == 0
    names = {row["name"] for row in json.loads(result["out"])}
    assert "pyod:iforest" in names  # the plugin is installed and listed
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_describing_a_pyod_detector_imports_no_pyod():
    result = probe("algos", "show", "pyod:iforest", "--json")
    assert result["code"] == 0
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
