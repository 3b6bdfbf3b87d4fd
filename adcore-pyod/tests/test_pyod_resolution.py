"""With adcore-pyod and adcore-sklearn both installed, a bare name resolves deterministically.

The rule (adcore.plugins.PluginHost.plugin_order): core first, then ADCORE_PREFER, then
alphabetical, so bare ``iforest`` is ``pyod:iforest``; the qualified names stay available.
"""

from __future__ import annotations

import pytest
from adcore.plugins import PluginHost

import adcore_pyod

adcore_sklearn = pytest.importorskip("adcore_sklearn")


def host(prefer: list[str] | None = None) -> PluginHost:
    h = PluginHost(autoload=False, prefer=prefer or [])
    h.load()
    h.add_plugin(adcore_sklearn, "sklearn")  # added first on purpose: order of loading must not matter
    h.add_plugin(adcore_pyod, "pyod")
    return h


def test_bare_iforest_is_pyod_by_alphabetical_order():
    h = host()
    assert h.plugin_order()[:3] == ["core", "pyod", "sklearn"]
    assert h.resolve("detector", "iforest").qualified_name == "pyod:iforest"
    assert h.resolve("detector", "lof").qualified_name == "pyod:lof"
    assert h.resolve("detector", "elliptic").qualified_name == "sklearn:elliptic"  # only sklearn has it


def test_qualified_names_stay_available():
    h = host()
    assert h.resolve("detector", "sklearn:iforest").factory == "adcore_sklearn.detectors:IsolationForest"
    # PyOD's own class, resolved through adcore_pyod.models (which turns numba's disk cache on)
    assert h.resolve("detector", "pyod:iforest").factory == "adcore_pyod.models:iforest.IForest"


def test_prefer_switches_the_winner():
    assert host(prefer=["sklearn"]).resolve("detector", "iforest").qualified_name == "sklearn:iforest"


def test_prefer_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADCORE_PREFER", "sklearn,pyod")
    h = PluginHost(autoload=False)
    h.load()
    h.add_plugin(adcore_pyod, "pyod")
    h.add_plugin(adcore_sklearn, "sklearn")
    assert h.resolve("detector", "iforest").qualified_name == "sklearn:iforest"


def test_listing_marks_what_the_bare_name_resolves_to():
    from adcore.plugins import set_host
    from adcore.services import catalog

    set_host(host())
    try:
        rows = {r["name"]: r for r in catalog.list_algorithms()}
    finally:
        set_host(None)
    assert rows["pyod:iforest"]["default_for_bare_name"]
    assert not rows["sklearn:iforest"]["default_for_bare_name"]


def test_pyod_and_sklearn_iforest_are_the_same_forest():
    """Why letting pyod win loses nothing: same seed, same trees; scores differ by sklearn's offset_."""
    import adcore
    import numpy as np

    X = np.random.default_rng(0).normal(size=(300, 4))
    pyod_scores = adcore.detect(X, algo="pyod:iforest", seed=1).scores
    sklearn_scores = adcore.detect(X, algo="sklearn:iforest", seed=1).scores
    shift = pyod_scores - sklearn_scores
    np.testing.assert_allclose(shift, shift[0], rtol=0, atol=1e-12)
