"""Numba's on-disk cache for the kernels adcore-pyod runs: written once, reused, never in the way.

Each case runs fresh processes, because the point is what a *new* process pays. Most use a
tiny ``@njit`` module written here (compiles in a second, imports no PyOD); the end-to-end
cases run ``adcore run --algo pyod:hbos`` itself. ``NUMBA_DEBUG_CACHE=1`` makes numba print
``[cache] data loaded from`` / ``data saved to``, which is how a case tells a load from a
compile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adcore_pyod import models

KERNELS = """
from numba import njit


@njit
def weighted_sum(x, w):
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * w[i]
    return total
"""

# Enables the cache the way adcore_pyod.models does after importing a PyOD module, calls the
# kernel with float64 or float32 arrays (argv[1]), prints the result and numba's counters.
PROBE = """
import sys
import numpy as np
import kernels
from adcore_pyod.compile_cache import enable_for_loaded
enabled = enable_for_loaded("kernels")
dtype = np.dtype(sys.argv[1])
x = np.arange(1000, dtype=dtype)
print("RESULT", enabled, kernels.weighted_sum(x, x[::-1].copy()),
      sum(kernels.weighted_sum.stats.cache_hits.values()),
      sum(kernels.weighted_sum.stats.cache_misses.values()))
"""


def probe(tmp_path: Path, cache: Path | str, dtype: str = "float64") -> dict:
    """Run the probe in a new process with ``NUMBA_CACHE_DIR=cache``; its printed outcome."""
    (tmp_path / "kernels.py").write_text(KERNELS)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, dtype], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    _, enabled, value, hits, misses = line.split()
    return {"enabled": int(enabled), "value": value, "hits": int(hits), "misses": int(misses)}


def cache_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_references_resolve_to_pyods_own_classes_lazily():
    assert models.reference("pyod.models.hbos:HBOS") == "adcore_pyod.models:hbos.HBOS"
    assert models.reference("adcore_pyod.adapters:DeepSVDD") == "adcore_pyod.adapters:DeepSVDD"
    with pytest.raises(AttributeError):
        models.__getattr__("__wrapped__")  # probes by copy/pickle/inspect import nothing


def test_a_kernel_is_compiled_once_then_loaded_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    first = probe(tmp_path, cache)
    assert first["enabled"] == 1
    assert (first["hits"], first["misses"]) == (0, 1)
    files = cache_files(cache)
    assert [p.suffix for p in files] == [".nbc", ".nbi"]
    stamps = {p: p.stat().st_mtime_ns for p in files}

    later = probe(tmp_path, cache)
    assert (later["hits"], later["misses"]) == (1, 0)
    assert later["value"] == first["value"]
    assert {p: p.stat().st_mtime_ns for p in cache_files(cache)} == stamps  # read, not rewritten


def test_an_unwritable_cache_folder_means_no_cache_and_no_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder's parent should be")
    first = probe(tmp_path, blocker / "numba")
    assert first["enabled"] == 0
    assert (first["hits"], first["misses"]) == (0, 1)
    later = probe(tmp_path, blocker / "numba")
    assert (later["hits"], later["misses"]) == (0, 1)  # compiled again: nothing was cached
    assert later["value"] == first["value"]
    assert cache_files(tmp_path) == []  # nor in numba's fallbacks (the source's __pycache__)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_cache_folder_means_no_cache_and_no_error(tmp_path):
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        result = probe(tmp_path, cache)
    finally:
        cache.chmod(0o755)
    assert result["enabled"] == 0
    assert cache_files(cache) == []


def test_concurrent_processes_share_one_cache(tmp_path):
    """Processes compiling at once, with the same and with different signatures, all succeed,
    and afterwards every signature loads from the cache with the right code."""
    cache = tmp_path / "cache"
    (tmp_path / "kernels.py").write_text(KERNELS)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(tmp_path))
    dtypes = ["float64", "float32", "float64", "float32", "float64", "float32"]
    procs = [
        subprocess.Popen([sys.executable, "-c", PROBE, d], stdout=subprocess.PIPE, text=True, env=env)
        for d in dtypes
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    values: dict[str, set[str]] = {"float64": set(), "float32": set()}
    for dtype, out in zip(dtypes, outputs, strict=True):
        values[dtype] |= {line.split()[2] for line in out.splitlines() if line.startswith("RESULT")}
    for dtype in ("float64", "float32"):
        later = probe(tmp_path, cache, dtype)
        assert (later["hits"], later["misses"]) == (1, 0), dtype
        assert values[dtype] == {later["value"]}


def adcore_run(tmp_path: Path, cache: Path, out: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_DEBUG_CACHE="1")
    env.pop("ADCORE_DEBUG", None)
    data = tmp_path / "data.csv"
    if not data.exists():
        import numpy as np

        X = np.random.default_rng(0).normal(size=(300, 4))
        data.write_text("a,b,c,d\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in X) + "\n")
    cmd = [sys.executable, "-m", "adcore.cli.main", "run", "--algo", "pyod:hbos", "--input", str(data)]
    proc = subprocess.run(
        [*cmd, "--output", str(tmp_path / out), "--seed", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_pyod_hbos_compiles_in_the_first_run_only(tmp_path):
    cache = tmp_path / "cache"
    first = adcore_run(tmp_path, cache, "first.csv")
    assert "data saved to" in first.stdout
    assert any(p.name.startswith("hbos._calculate_outlier_scores") for p in cache_files(cache))

    later = adcore_run(tmp_path, cache, "later.csv")
    assert "data loaded from" in later.stdout
    assert "data saved to" not in later.stdout
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "later.csv").read_bytes()


@pytest.mark.slow
def test_pyod_hbos_runs_with_an_unwritable_cache_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = adcore_run(tmp_path, blocker / "numba", "out.csv")
    assert "data saved to" not in proc.stdout
    assert "data loaded from" not in proc.stdout
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 301  # header + every row


def test_registration_imports_neither_pyod_nor_numba():
    code = textwrap.dedent(
        """
        import sys
        from adcore.plugins import get_host
        get_host().resolve("detector", "pyod:hbos")
        print(sorted({m.split(".")[0] for m in sys.modules} & {"pyod", "numba", "sklearn"}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
