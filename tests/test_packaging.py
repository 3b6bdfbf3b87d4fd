"""What each distribution's wheel and sdist contain (issue 14: the core shipped the plugins).

Every distribution in the repository is built once per session, from a clean copy of the
tree (no ``*.egg-info`` or ``build/`` left by earlier builds), through setuptools' PEP 517
hooks in a subprocess: what ``python -m build --no-isolation`` or ``pip wheel`` would do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("setuptools.build_meta")


@dataclass(frozen=True)
class Dist:
    """One distribution: its folder in the repository, import package, and expected entry point."""

    folder: str
    package: str
    entry_point: str  # a line of the wheel's entry_points.txt
    data: tuple[str, ...] = ()  # non-Python files the package must ship


DISTS = [
    Dist(
        ".",
        "adcore",
        "adcore = adcore.cli.main:main",
        ("py.typed", "server/dashboard/index.html", "server/dashboard/app.js", "server/dashboard/style.css"),
    ),
    Dist("adcore-pyod", "adcore_pyod", "pyod = adcore_pyod", ("catalog.json", "py.typed")),
    Dist("adcore-sklearn", "adcore_sklearn", "sklearn = adcore_sklearn", ("py.typed",)),
    Dist("adcore-torch", "adcore_torch", "torch = adcore_torch", ("py.typed",)),
    Dist("adcore-kafka", "adcore_kafka", "kafka = adcore_kafka", ("py.typed",)),
    Dist("plugins/example", "adcore_example", "example = adcore_example", ("py.typed",)),
    Dist("plugins/template", "adcore_myplugin", "myplugin = adcore_myplugin"),
]
_SKIP = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".tox", "node_modules"
)
_HOOK = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"


@dataclass(frozen=True)
class Built:
    dist: Dist
    source: Path  # the distribution's folder in the clean copy
    wheel: list[str]  # member names
    sdist: list[str]  # member names, without the leading "name-version/"
    entry_points: str  # the wheel's *.dist-info/entry_points.txt


def _hook(hook: str, folder: Path, out: Path) -> Path:
    """Run one PEP 517 hook in a fresh interpreter (setuptools keeps state between builds)."""
    done = subprocess.run(
        [sys.executable, "-c", _HOOK, hook, str(out)], cwd=folder, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{hook} in {folder} failed:\n{done.stderr[-3000:]}"
    return out / done.stdout.strip().splitlines()[-1]


def _plant_stale_manifest(tree: Path) -> None:
    """The SOURCES.txt an old build with ``include = ["adcore*"]`` left: it listed the plugins."""
    info = tree / "adcore.egg-info"
    info.mkdir()
    stale = sorted(str(p.relative_to(tree)) for p in (tree / "adcore-sklearn").rglob("*.py"))
    (info / "SOURCES.txt").write_text("\n".join(["pyproject.toml", *stale]) + "\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    tree = tmp_path_factory.mktemp("packaging") / "tree"
    shutil.copytree(REPO, tree, ignore=_SKIP)
    _plant_stale_manifest(tree)
    out = tree.parent / "dist"
    result = {}
    for dist in DISTS:
        folder = tree / dist.folder
        wheel = _hook("build_wheel", folder, out)
        sdist = _hook("build_sdist", folder, out)
        with zipfile.ZipFile(wheel) as zf:
            wheel_names = zf.namelist()
            entry_points = "".join(
                zf.read(n).decode() for n in wheel_names if n.endswith(".dist-info/entry_points.txt")
            )
        with tarfile.open(sdist) as tf:
            sdist_names = [str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) for m in tf if m.isfile()]
        result[dist.folder] = Built(dist, folder, wheel_names, sdist_names, entry_points)
    return result


def _ids(dists: list[Dist]) -> list[str]:
    return [d.package for d in dists]


@pytest.mark.parametrize("dist", DISTS, ids=_ids(DISTS))
def test_wheel_holds_only_its_own_package_and_metadata(built: dict[str, Built], dist: Dist) -> None:
    names = built[dist.folder].wheel
    tops = {n.split("/")[0] for n in names}
    info = [t for t in tops if t.endswith(".dist-info")]
    assert len(info) == 1 and tops == {dist.package, info[0]}, sorted(tops)
    assert not [n for n in names if "tests/" in n or "/test_" in n], "tests must not ship in a wheel"


@pytest.mark.parametrize("dist", DISTS, ids=_ids(DISTS))
def test_wheel_holds_every_module_and_data_file(built: dict[str, Built], dist: Dist) -> None:
    build = built[dist.folder]
    package_dir = build.source / dist.package if dist.folder == "." else build.source / "src" / dist.package
    modules = {f"{dist.package}/{p.relative_to(package_dir).as_posix()}" for p in package_dir.rglob("*.py")}
    shipped = set(build.wheel)
    assert modules <= shipped, f"modules missing from the wheel: {sorted(modules - shipped)}"
    data = {f"{dist.package}/{name}" for name in dist.data}
    assert data <= shipped, f"data files missing from the wheel: {sorted(data - shipped)}"


@pytest.mark.parametrize("dist", DISTS, ids=_ids(DISTS))
def test_wheel_declares_its_entry_point(built: dict[str, Built], dist: Dist) -> None:
    """The core's console script, or the plugin's ``[adcore]`` entry point adcore finds it by."""
    section = "[console_scripts]" if dist.folder == "." else "[adcore]"
    lines = [line.strip() for line in built[dist.folder].entry_points.splitlines()]
    assert section in lines and dist.entry_point in lines, built[dist.folder].entry_points


@pytest.mark.parametrize("dist", DISTS, ids=_ids(DISTS))
def test_sdist_holds_only_its_own_distribution(built: dict[str, Built], dist: Dist) -> None:
    names = built[dist.folder].sdist
    tops = {n.split("/")[0] for n in names}
    if dist.folder == ".":
        allowed = {
            "adcore",
            "adcore.egg-info",
            "PKG-INFO",
            "README.md",
            "pyproject.toml",
            "setup.cfg",
            "MANIFEST.in",
        }
        strays = [n for n in names if n.startswith(("adcore-", "plugins/"))]
        assert not strays, f"the core's sdist carries plugin distributions: {strays[:5]}"
    else:
        allowed = {"src", "tests", "PKG-INFO", "README.md", "pyproject.toml", "setup.cfg"}
        packages = {n.split("/")[1] for n in names if n.startswith("src/")}
        assert packages == {dist.package, f"{dist.package}.egg-info"}, packages
    assert tops <= allowed, f"unexpected top-level entries: {sorted(tops - allowed)}"
    assert f"{dist.package}/__init__.py" in {n.removeprefix("src/") for n in names}
