"""Shared fixtures: real plugin distributions on a temporary path, and the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class PluginSite:
    """A folder on PYTHONPATH holding real ``*.dist-info`` plugin distributions."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def add(
        self, dist: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0.0"
    ) -> None:
        """Install a throwaway distribution: modules plus dist-info with ``[adcore]`` entry points."""
        for name, source in modules.items():
            path = self.root / (name.replace(".", "/") + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[adcore]\n{lines}\n")

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``adcore ARGS`` in a fresh interpreter that sees this site's plugins."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
        full_env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(REPO)])
        full_env.update(self.env)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "adcore.cli.main", *args],
            capture_output=True,
            text=True,
            env=full_env,
            input=stdin,
            timeout=120,
        )

    def run_json(self, *args: str, env: dict[str, str] | None = None) -> object:
        proc = self.run(*args, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture
def plugin_site(tmp_path: Path) -> PluginSite:
    site = tmp_path / "site"
    site.mkdir()
    return PluginSite(site)


MAXABS_PLUGIN = '''
import numpy as np
import adcore

class MaxAbs:
    """Largest robust z-score over the features."""
    def fit(self, X, y=None):
        self.median_ = np.median(X, axis=0)
        self.mad_ = np.median(np.abs(X - self.median_), axis=0) + 1e-12
        return self
    def decision_function(self, X):
        return np.abs((X - self.median_) / self.mad_).max(axis=1)

@adcore.hookimpl
def register_detectors(register):
    register("maxabs", MaxAbs, summary="largest robust z-score")
'''


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """200 rows x 3 features with 5 planted outliers in rows 0-4."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    X[:5] += 8.0
    path = tmp_path / "data.csv"
    lines = ["a,b,c"] + [",".join(f"{v:.6f}" for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


# Model-store service fixtures (PostgreSQL + moto S3 on loopback) and the store_url parametrization.
from store_services import postgres_server, postgres_store_url, s3_server, store_url  # noqa: E402, F401
