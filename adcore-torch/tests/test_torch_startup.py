"""Listing and describing the plugin's detectors never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import io, json, sys, contextlib
from adcore.cli.main import run_cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
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


def test_adcore_algos_lists_the_detectors_without_importing_torch() -> None:
    result = probe("algos", "--json")
    assert result["code"] == 0
    names = {row["name"] for row in json.loads(result["out"])}
    assert {"torch:autoencoder", "torch:vae", "torch:deepsvdd", "torch:seq-autoencoder"} <= names
    assert "torch" not in result["modules"]


def test_describing_a_detector_does_not_import_torch() -> None:
    result = probe("algos", "show", "torch:vae", "--json")
    assert result["code"] == 0
    described = json.loads(result["out"])
    assert {p["name"] for p in described["parameters"]} >= {"hidden_sizes", "latent_dim", "device", "epochs"}
    assert "torch" not in result["modules"]
