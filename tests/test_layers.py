"""Layers you can see, and that stay layers: dependencies point inward.

presentation (``cli/``, ``server/``) -> ``services/`` -> ``domain/``. The domain imports no
framework and no outer layer, at any depth (a shortcut taken inside a function is caught
too), and no detector library at module level: where an optional capability needs one
(scikit-learn's tags, the stacking meta-learner, scipy's erf) it is imported inside the
function that needs it, so importing the domain never loads it. Services never import the
presentation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adcore"

#: What each layer must never import (a module or any of its submodules), at any depth.
FORBIDDEN = {
    "domain": (
        "adcore.services", "adcore.cli", "adcore.server", "adcore.builtin", "adcore.stores",
        "typer", "rich", "fastapi", "starlette", "uvicorn", "pluggy",
    ),
    "services": ("adcore.cli", "adcore.server", "typer", "fastapi", "starlette", "uvicorn"),
}  # fmt: skip
#: What each layer must not import at module level (optional capabilities import them lazily).
NOT_AT_IMPORT = {"domain": ("sklearn", "scipy", "pyod", "torch", "pandas", "pyarrow")}


def _imports(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _violations(layer: str) -> list[str]:
    out = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        checks = [(FORBIDDEN[layer], False), (NOT_AT_IMPORT.get(layer, ()), True)]
        for banned_modules, top_level_only in checks:
            for line, module in _imports(path, top_level_only=top_level_only):
                if any(module == b or module.startswith(b + ".") for b in banned_modules):
                    out.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_outside_it(layer):
    assert _violations(layer) == []


def test_the_top_level_holds_only_the_public_surface():
    """The package's top level: the API, the ports, the host, errors, the kit and the I/O facade;
    everything else lives in a layer's package."""
    modules = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__", "data", "errors", "hookspecs", "messaging", "plugins", "testing"]
