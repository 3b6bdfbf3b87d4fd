"""Start-up is a feature: listing algorithms loads no heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("torch", "pyod", "sklearn", "scipy", "pandas", "fastapi", "numba", "pyarrow", "opentelemetry")

PROBE = """
import io, json, sys, contextlib
from adcore.cli.main import run_cli
with contextlib.redirect_stdout(io.StringIO()):
    code = run_cli(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def probe(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_algos_imports_no_heavy_library():
    result = probe("algos")
    assert result["code"] == 0
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "numpy" not in loaded  # listing needs no numerics at all


def test_plugins_listing_imports_no_heavy_library():
    loaded = {m.split(".")[0] for m in probe("plugins")["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_import_adcore_is_cheap():
    code = "import sys, adcore; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, timeout=60
    )
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout)}
    assert not loaded & {*HEAVY, "numpy", "typer", "rich", "pydantic"}


PLUGIN_AUTHOR_NAMES = ("resolve_reference", "parse_numpydoc_params", "check_event_types")


def test_names_for_plugin_authors_are_public_and_cheap():
    """What plugins import from the core is public (``adcore.NAME``) and loads nothing heavy."""
    code = (
        "import json, sys, adcore\n"
        f"names = {PLUGIN_AUTHOR_NAMES!r}\n"
        "assert all(callable(getattr(adcore, n)) and n in adcore.__all__ for n in names)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout)}
    assert not loaded & {*HEAVY, "numpy", "typer", "rich", "pydantic"}
