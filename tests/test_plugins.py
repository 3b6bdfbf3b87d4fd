"""The plugin host with real entry points: real dist-info folders on a temporary path."""

from __future__ import annotations

import json

import pytest

from adcore.errors import PluginError, UnknownAlgorithmError
from adcore.plugins import PluginHost
from tests.conftest import MAXABS_PLUGIN


def test_third_party_plugin_is_found_and_runs(plugin_site, csv_file, tmp_path):
    plugin_site.add("my-plugin", {"mine": "my_plugin"}, {"my_plugin": MAXABS_PLUGIN}, version="0.3.1")
    plugins = {p["name"]: p for p in plugin_site.run_json("plugins")}
    assert plugins["mine"]["ok"] and plugins["mine"]["version"] == "0.3.1"
    assert plugins["mine"]["hooks"] == ["register_detectors"]
    names = [a["name"] for a in plugin_site.run_json("algos")]
    assert "mine:maxabs" in names
    out = tmp_path / "scores.csv"
    proc = plugin_site.run("run", "--algo", "maxabs", "--input", str(csv_file), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "score,label" and len(rows) == 201
    labels = [int(r.split(",")[1]) for r in rows[1:]]
    assert labels[:5] == [1, 1, 1, 1, 1]


BROKEN_IMPORT = "raise RuntimeError('boom at import')\n"
RAISES_IN_HOOK = """
import adcore
@adcore.hookimpl
def register_detectors(register):
    register("half", lambda: None)
    raise ValueError("hook exploded")
"""
MALFORMED = """
import adcore
@adcore.hookimpl
def register_detectors(register):
    register("bad name!", "x:y")
"""
TYPO_HOOK = """
import adcore
@adcore.hookimpl
def register_detector(register):
    register("x", "x:y")
"""
BAD_SIGNATURE = """
import adcore
@adcore.hookimpl
def register_detectors(register, extra):
    pass
"""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (BROKEN_IMPORT, "failed to import broken_mod: RuntimeError: boom at import"),
        (RAISES_IN_HOOK, "register_detectors raised ValueError: hook exploded"),
        (MALFORMED, "malformed detector name 'bad name!'"),
        (TYPO_HOOK, "unknown hook 'register_detector' (did you mean 'register_detectors'?)"),
        (BAD_SIGNATURE, "invalid plugin"),
    ],
    ids=["import", "hook-raises", "malformed", "typo", "signature"],
)
def test_broken_plugin_is_reported_never_fatal(plugin_site, csv_file, source, message):
    plugin_site.add("broken", {"broken": "broken_mod"}, {"broken_mod": source})
    plugin_site.add("good", {"good": "good_mod"}, {"good_mod": MAXABS_PLUGIN})
    plugins = {p["name"]: p for p in plugin_site.run_json("plugins")}
    assert not plugins["broken"]["ok"]
    assert any(message in e for e in plugins["broken"]["errors"]), plugins["broken"]["errors"]
    assert plugins["good"]["ok"]
    names = {a["name"] for a in plugin_site.run_json("algos")}
    assert {"good:maxabs", "core:hbos"} <= names
    assert not any(n.startswith("broken:") for n in names)
    proc = plugin_site.run("plugins")
    assert proc.returncode == 0 and "broken" in proc.stdout


def test_strict_mode_makes_plugin_errors_fatal(plugin_site):
    plugin_site.add("broken", {"broken": "broken_mod"}, {"broken_mod": BROKEN_IMPORT})
    proc = plugin_site.run("algos", env={"ADCORE_PLUGINS_STRICT": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: plugin 'broken': failed to import broken_mod: RuntimeError: boom at import"
    ]


CLASH = """
import adcore
from adcore.builtin.detectors import RobustZScore

@adcore.hookimpl
def register_detectors(register):
    register("hbos", RobustZScore, summary="another hbos")
    register("maxabs", RobustZScore, summary="another maxabs")
"""


def test_name_clash_resolves_deterministically(plugin_site):
    plugin_site.add("zeta", {"zeta": "zeta_mod"}, {"zeta_mod": CLASH})
    plugin_site.add("alpha", {"alpha": "alpha_mod"}, {"alpha_mod": MAXABS_PLUGIN})
    rows = {a["name"]: a for a in plugin_site.run_json("algos")}
    # core wins its own names; otherwise plugins alphabetically: alpha before zeta
    assert rows["core:hbos"]["default_for_bare_name"] and not rows["zeta:hbos"]["default_for_bare_name"]
    assert rows["alpha:maxabs"]["default_for_bare_name"] and not rows["zeta:maxabs"]["default_for_bare_name"]
    preferred = {a["name"]: a for a in plugin_site.run_json("algos", env={"ADCORE_PREFER": "zeta"})}
    assert preferred["zeta:maxabs"]["default_for_bare_name"]
    # qualified names always work
    shown = plugin_site.run_json("algos", "show", "zeta:maxabs")
    assert shown["name"] == "zeta:maxabs" and shown["summary"] == "another maxabs"


def test_entry_point_name_clash_and_reserved_name(plugin_site):
    plugin_site.add("first", {"same": "first_mod"}, {"first_mod": MAXABS_PLUGIN})
    plugin_site.add("second", {"same": "second_mod"}, {"second_mod": MAXABS_PLUGIN})
    plugin_site.add("sneaky", {"core": "sneaky_mod"}, {"sneaky_mod": MAXABS_PLUGIN})
    plugins = plugin_site.run_json("plugins")
    errors = " ".join(e for p in plugins for e in p["errors"])
    assert "plugin name 'same' is already used" in errors
    assert "reserved for adcore's built-ins" in errors
    core = [p for p in plugins if p["name"] == "core" and p["builtin"]]
    assert core and core[0]["ok"]


def test_autoload_switches(plugin_site):
    plugin_site.add("one", {"one": "one_mod"}, {"one_mod": MAXABS_PLUGIN})
    plugin_site.add("two", {"two": "two_mod"}, {"two_mod": MAXABS_PLUGIN})

    def names(env):
        return {p["name"] for p in plugin_site.run_json("plugins", env=env)}

    # other plugins may be installed in the environment: look only at ours
    ours = {"one", "two", "core"}
    assert names({}) & ours == ours
    assert names({"ADCORE_DISABLE_PLUGIN_AUTOLOAD": "1"}) == {"core"}
    assert names({"ADCORE_PLUGINS": "two"}) == {"two", "core"}
    assert names({"ADCORE_DISABLE_PLUGINS": "two"}) & ours == {"one", "core"}


LAZY_PLUGIN = """
import adcore

@adcore.hookimpl
def register_detectors(register):
    params = [{"name": "k", "type": "int", "default": 3}]
    register("slow", "heavy_lib:Detector", summary="lazy", params=params)
"""
HEAVY_LIB = """
import os, pathlib
pathlib.Path(os.environ["MARKER"]).write_text("imported")
from adcore.builtin.detectors import RobustZScore as Detector
"""


def test_listing_does_not_import_lazy_factories(plugin_site, tmp_path, csv_file):
    marker = tmp_path / "marker"
    plugin_site.add("lazy", {"lazy": "lazy_mod"}, {"lazy_mod": LAZY_PLUGIN, "heavy_lib": HEAVY_LIB})
    env = {"MARKER": str(marker)}
    assert "lazy:slow" in {a["name"] for a in plugin_site.run_json("algos", env=env)}
    assert plugin_site.run_json("algos", "show", "lazy:slow", env=env)["parameters"][0]["name"] == "k"
    assert not marker.exists(), "listing or describing imported the heavy library"
    proc = plugin_site.run("run", "--algo", "lazy:slow", "--input", str(csv_file), env=env)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


def test_missing_optional_dependency_names_the_package(plugin_site, csv_file):
    plugin_site.add(
        "needy",
        {"needy": "needy_mod"},
        {
            "needy_mod": """
import adcore
@adcore.hookimpl
def register_detectors(register):
    register("deep", "not_installed_pkg.models:Deep", needs=["not-installed-pkg"], params=[])
"""
        },
    )
    rows = {a["name"]: a for a in plugin_site.run_json("algos")}
    assert rows["needy:deep"]["needs"] == ["not-installed-pkg"]
    proc = plugin_site.run("run", "--algo", "needy:deep", "--input", str(csv_file))
    assert proc.returncode == 2
    assert (
        "needs not-installed-pkg" in proc.stderr
        and "pip install not-installed-pkg" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_unknown_algorithm_suggests_close_matches():
    host = PluginHost(autoload=False).load()
    with pytest.raises(UnknownAlgorithmError, match=r"did you mean .*hbos"):
        host.resolve("detector", "hbso")
    with pytest.raises(UnknownAlgorithmError, match="adcore algos"):
        host.resolve("detector", "qqqqqq")


def test_add_plugin_in_process_and_strict():
    from adcore import hookimpl

    class Plugin:
        @hookimpl
        def register_detectors(self, register):
            register("inline", lambda: None, summary="s")

    host = PluginHost(autoload=False).load()
    host.add_plugin(Plugin(), "inline")
    assert "inline:inline" in host.registry("detector")
    strict = PluginHost(autoload=False, strict=True).load()

    class Typo:
        @hookimpl
        def register_detectorz(self, register):
            pass

    with pytest.raises(PluginError, match="unknown hook"):
        strict.add_plugin(Typo(), "typo")
    json.dumps([i.to_dict() for i in host.plugins()])
