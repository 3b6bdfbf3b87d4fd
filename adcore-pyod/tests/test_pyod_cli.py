"""What a user sees: detectors listed by plugin, 'needs X' notes, clean errors for missing packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from adcore_pyod import catalog

# Runs the CLI in a fresh interpreter, after hiding the named packages (as if not installed).
HIDE_AND_RUN = textwrap.dedent(
    """
    import sys
    for name in sys.argv[1].split(","):
        sys.modules[name] = None  # import fails, importlib.util.find_spec returns None
    from adcore.cli.main import run_cli
    sys.exit(run_cli(sys.argv[2:]))
    """
)


@pytest.fixture
def csv_file(tmp_path):
    """200 rows x 3 features, 5 planted outliers."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    X[:5] += 8.0
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in X) + "\n")
    return path


def cli(*args: str, hide: str = "adcore_no_such_module") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["COLUMNS"] = "250"  # a wide table: rich wraps cells to the terminal width
    return subprocess.run(
        [sys.executable, "-c", HIDE_AND_RUN, hide, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_algos_lists_pyod_detectors_with_their_needs():
    proc = cli("algos", "--plugin", "pyod", "--json", hide="torch")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert len(rows) == len(catalog.detectors()) >= 40
    assert {r["plugin"] for r in rows.values()} == {"pyod"}
    assert rows["pyod:auto-encoder"]["needs"] == ["torch", "tqdm"]
    assert "torch" in rows["pyod:auto-encoder"]["missing"]
    assert rows["pyod:iforest"]["needs"] == rows["pyod:iforest"]["missing"] == []
    table = cli("algos", "--plugin", "pyod", hide="torch").stdout
    line = next(line for line in table.splitlines() if "pyod:dif" in line)
    assert "(needs torch)" in line


def test_algos_show_describes_parameters_from_the_catalog():
    proc = cli("algos", "show", "pyod:knn", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    params = {p["name"]: p for p in info["parameters"]}
    assert params["n_neighbors"]["default"] == "5" and params["method"]["default"] == "'largest'"


@pytest.mark.parametrize(
    ("algo", "hidden", "package"),
    [
        ("pyod:auto-encoder", "torch", "torch"),
        ("pyod:mo-gaal", "torch", "torch"),  # PyOD raises a plain ImportError here
        ("pyod:deep-svdd", "torch", "torch"),  # built through adcore_pyod.adapters
        ("pyod:feature-bagging", "combo", "combo"),
        ("pyod:suod", "suod", "suod"),  # PyOD would only fail in fit
    ],
)
def test_missing_optional_dependency_is_a_clean_error(csv_file, algo, hidden, package):
    proc = cli("run", "--algo", algo, "--input", str(csv_file), hide=hidden)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert algo in proc.stderr
    assert package in proc.stderr.split("pip install ", 1)[1].split()


def test_unknown_parameter_names_the_close_match(csv_file):
    proc = cli("run", "--algo", "pyod:knn", "--param", "n_neighbours=3", "--input", str(csv_file))
    assert proc.returncode == 2
    assert "did you mean 'n_neighbors'" in proc.stderr


def test_shadowed_parameter_is_refused_cleanly(csv_file):
    proc = cli("run", "--algo", "pyod:knn", "--param", "algorithm=kd_tree", "--input", str(csv_file))
    assert proc.returncode == 2, proc.stderr
    assert "'algorithm' names the detector" in proc.stderr
