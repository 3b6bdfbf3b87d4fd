"""The plugin host with real entry points: real dist-info folders on a temporary path."""

from __future__ import annotations

import importlib.util
import json

import pytest

from adcore import hookimpl
from adcore.errors import ParameterError, PluginError, StoreError, UnknownAlgorithmError
from adcore.plugins import PluginHost
from tests.conftest import MAXABS_PLUGIN


def test_third_party_plugin_is_found_and_runs(plugin_site, csv_file, tmp_path):
    plugin_site.add("my-plugin", {"mine": "my_plugin"}, {"my_plugin": MAXABS_PLUGIN}, version="0.3.1")
    plugins = {p["name"]: p for p in plugin_site.run_json("plugins")}
    assert plugins["mine"]["ok"] and plugins["mine"]["version"] == "0.3.1"
    assert plugins["mine"]["hooks"] == ["register_detectors"]
    assert plugins["mine"]["registers"] == {"detector": 1}
    assert plugins["mine"]["registrations"] == {"detector": ["maxabs"]}
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
    plugins = plugin_site.run_json("plugins", "--all")
    errors = " ".join(e for p in plugins for e in p["errors"])
    assert "plugin name 'same' is already used" in errors
    assert "reserved for adcore's built-ins" in errors
    core = [p for p in plugins if p["name"] == "core" and p["builtin"]]
    assert core and core[0]["ok"]


def test_autoload_switches(plugin_site):
    plugin_site.add("one", {"one": "one_mod"}, {"one_mod": MAXABS_PLUGIN})
    plugin_site.add("two", {"two": "two_mod"}, {"two_mod": MAXABS_PLUGIN})

    def names(env):
        return {p["name"] for p in plugin_site.run_json("plugins", "--all", env=env)}

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
    assert "needs not-installed-pkg" in proc.stderr and "pip install not-installed-pkg" in proc.stderr
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


# ------------------------------------------------------------ registration keywords
class _Registers:
    """A plugin whose ``hook`` registers ``good`` and then ``bad`` with ``keywords``."""

    def __init__(self, hook: str, keywords: dict) -> None:
        def call(register):
            register("good", _factory_for(hook), summary="fine")
            register("bad", _factory_for(hook), **keywords)

        setattr(self, hook, hookimpl(call))


def _factory_for(hook: str):
    return "adcore.builtin.messaging:open_file" if hook == "register_messaging" else print


KIND = {
    "register_detectors": "detector",
    "register_storage": "storage",
    "register_monitors": "monitor",
    "register_messaging": "messaging",
    "register_event_subscribers": "subscriber",
}


@pytest.mark.parametrize(
    ("hook", "keywords", "message"),
    [
        (
            "register_detectors",
            {"xfail_check": {}},
            "unknown keyword 'xfail_check' (did you mean 'xfail_checks'?)",
        ),
        ("register_detectors", {"need": ["x"]}, "unknown keyword 'need' (did you mean 'needs'?)"),
        ("register_detectors", {"summry": "s"}, "unknown keyword 'summry' (did you mean 'summary'?)"),
        ("register_detectors", {"pyod_class": "x"}, "keep your own metadata in extra={...}"),
        ("register_storage", {"params": []}, "unknown keyword 'params'"),
        ("register_monitors", {"tag": ()}, "unknown keyword 'tag'"),
        ("register_messaging", {"knd": "source"}, "(did you mean 'kind'?)"),
        ("register_messaging", {"kind": "both"}, "kind must be 'source', 'sink' or 'source+sink'"),
        ("register_event_subscribers", {"type": ()}, "(did you mean 'types'?)"),
        ("register_event_subscribers", {"types": ["drift.detcted"]}, "unknown event type(s) drift.detcted"),
        ("register_detectors", {"slow": "yes"}, "slow must be True or False"),
        ("register_detectors", {"extra": "mine"}, "extra must be a dict"),
        ("register_detectors", {"needs": [1]}, "needs must be a string or a list of strings"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("register_") else None,
)
def test_bad_registration_keyword_is_refused_alone(hook, keywords, message):
    host = PluginHost(autoload=False).load()
    host.add_plugin(_Registers(hook, keywords), "typos")
    registry = host.registry(KIND[hook])
    assert "typos:good" in registry and "typos:bad" not in registry
    info = {i.name: i for i in host.plugins()}["typos"]
    assert not info.ok
    assert any(e.startswith(f"{hook}: ") and "'bad' refused" in e and message in e for e in info.errors), (
        info.errors
    )
    assert info.registered[KIND[hook]] == ["good"]


def test_bad_registration_keyword_is_fatal_in_strict_mode():
    host = PluginHost(autoload=False, strict=True).load()
    host.add_plugin(_Registers("register_detectors", {"xfail_check": {}}), "typos")
    with pytest.raises(PluginError, match=r"plugin 'typos': .*did you mean 'xfail_checks'\?"):
        host.registry("detector")


def test_declared_keywords_are_checked_and_kept():
    class Plugin:
        @hookimpl
        def register_detectors(self, register):
            register("one", print, needs="torch", tags=["a"], slow=True, extra={"pyod_class": "x.Y"})

        @hookimpl
        def register_messaging(self, register):
            register("mine", "adcore.builtin.messaging:open_file", kind="sink+source")

    host = PluginHost(autoload=False).load()
    host.add_plugin(Plugin(), "p")
    reg = host.resolve("detector", "p:one")
    assert reg.needs == ("torch",)  # one package, not five letters
    assert reg.metadata["tags"] == ("a",) and reg.metadata["slow"] is True
    assert reg.metadata["extra"] == {"pyod_class": "x.Y"}
    assert host.registry("messaging")["p:mine"].metadata["kind"] == "source+sink"
    assert host.info("p").ok


TYPO_KEYWORD = """
import adcore
@adcore.hookimpl
def register_detectors(register):
    register("maxabs", "x:y", xfail_check={"check_orientation": "why"})
    register("fine", "x:y", summary="still registered")
"""


def test_keyword_typo_shows_in_adcore_plugins(plugin_site):
    plugin_site.add("typo", {"typo": "typo_mod"}, {"typo_mod": TYPO_KEYWORD})
    plugins = {p["name"]: p for p in plugin_site.run_json("plugins")}
    assert not plugins["typo"]["ok"] and plugins["typo"]["registrations"] == {"detector": ["fine"]}
    assert plugins["typo"]["errors"] == [
        "register_detectors: detector 'maxabs' refused: unknown keyword 'xfail_check' "
        "(did you mean 'xfail_checks'?)"
    ]
    table = plugin_site.run("plugins", env={"COLUMNS": "400"}).stdout
    assert "refused: unknown keyword 'xfail_check' (did you mean 'xfail_checks'?)" in table


def test_every_registration_in_this_repository_uses_declared_keywords():
    """What the installed distributions register today (pyod, sklearn, torch, kafka, examples) passes."""
    host = PluginHost(only=None, disabled=[]).load()
    broken = {i.name: i.errors for i in host.plugins() if not i.ok}
    assert not broken


# ----------------------------------------------------- every port shows a broken hook
RAISES = """
import adcore
@adcore.hookimpl
def {hook}({arg}):
    raise RuntimeError("{hook} broke")
"""


@pytest.mark.parametrize(
    ("hook", "arg"),
    [
        ("register_storage", "register"),
        ("register_monitors", "register"),
        ("register_messaging", "register"),
        ("register_event_subscribers", "register"),
        ("register_commands", "cli"),
        pytest.param(
            "register_routes",
            "app",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("fastapi") is None,
                reason="routes are checked only where FastAPI (the server extra) is installed",
            ),
        ),
    ],
)
def test_adcore_plugins_calls_every_hook(plugin_site, hook, arg):
    source = RAISES.format(hook=hook, arg=arg)
    plugin_site.add("broken", {"broken": "broken_mod"}, {"broken_mod": source})
    plugin_site.add("good", {"good": "good_mod"}, {"good_mod": MAXABS_PLUGIN})
    plugins = {p["name"]: p for p in plugin_site.run_json("plugins")}
    assert plugins["broken"]["errors"] == [f"{hook} raised RuntimeError: {hook} broke"]
    assert plugins["good"]["ok"]
    assert "core" not in plugins  # built-ins only with --all


def test_adcore_plugins_hides_builtins_unless_all(plugin_site):
    plugin_site.add("good", {"good": "good_mod"}, {"good_mod": MAXABS_PLUGIN})
    env = {"ADCORE_PLUGINS": "good"}
    assert [p["name"] for p in plugin_site.run_json("plugins", env=env)] == ["good"]
    shown = {p["name"]: p for p in plugin_site.run_json("plugins", "--all", env=env)}
    assert shown["core"]["builtin"] and shown["core"]["registers"]["storage"] >= 1
    assert set(shown["core"]["registrations"]) == {"detector", "storage", "monitor", "messaging", "executor"}
    proc = plugin_site.run("plugins", env={"ADCORE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert proc.returncode == 0 and "no plugins installed" in proc.stdout and "--all" in proc.stdout
    table = plugin_site.run("plugins", "--all", env=env).stdout
    assert "registers" in table and "detector: 1" in table and "built-in" in table


def test_one_failing_plugin_does_not_stop_the_others_hooks():
    calls: list[str] = []

    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no")

    class Good:
        @hookimpl
        def register_commands(self, cli):
            calls.append(cli)

    host = PluginHost(autoload=False, builtins=False).load()
    host.add_plugin(Good(), "good")
    host.add_plugin(Broken(), "broken")
    host.add_commands("the app")
    assert calls == ["the app"]
    assert host.hook_errors("register_commands") == [("broken", "register_commands raised RuntimeError: no")]
    assert {i.name: i.ok for i in host.plugins(check_hooks=True)} == {"good": True, "broken": False}
    assert calls == ["the app"]  # already called for real: not called again on a stand-in


# ---------------------------------------------------------------- URL schemes
class _Schemes:
    def __init__(self, *schemes: str) -> None:
        self.schemes = schemes

    @hookimpl
    def register_storage(self, register):
        for scheme in self.schemes:
            register(scheme, print, summary=f"{scheme} store")

    @hookimpl
    def register_messaging(self, register):
        for scheme in self.schemes:
            register(scheme, print, kind="sink")


def test_resolve_scheme_errors_read_like_detector_names():
    host = PluginHost(autoload=False).load()
    host.add_plugin(_Schemes("mystore"), "mine")
    assert host.resolve_scheme("storage", "mystore://x/y").qualified_name == "mine:mystore"
    assert host.resolve_scheme("storage", "/a/plain/path").qualified_name == "core:file"
    with pytest.raises(StoreError) as typo:
        host.resolve_scheme("storage", "mystor://u:secret@h/db", error=StoreError)
    assert str(typo.value) == (
        "no model-store backend for 'mystor' URLs (mystor://u:***@h/db); did you mean mystore?; "
        "installed schemes: file, mystore, postgres, postgresql"
    )
    with pytest.raises(
        ParameterError,
        match=r"^no stream transport for 'nats' URLs \(nats://q\); "
        r"installed schemes: file, mystore, stdio$",
    ):
        host.resolve_scheme("messaging", "nats://q")


def test_a_scheme_served_twice_resolves_like_a_bare_name():
    def host(prefer):
        h = PluginHost(autoload=False, prefer=prefer).load()
        h.add_plugin(_Schemes("file", "dup"), "zeta")
        h.add_plugin(_Schemes("dup"), "alpha")
        return h

    assert host([]).resolve_scheme("storage", "file://x").plugin == "core"  # core keeps its schemes
    assert host([]).resolve_scheme("storage", "dup://x").plugin == "alpha"
    assert host(["zeta"]).resolve_scheme("storage", "dup://x").plugin == "zeta"


def test_stream_endpoints_and_stores_resolve_through_the_host():
    from adcore.messaging import open_sink, open_source
    from adcore.plugins import set_host
    from adcore.services.registry import open_store

    host = PluginHost(autoload=False).load()
    host.add_plugin(_Schemes("mystore"), "mine")
    with pytest.raises(ParameterError, match=r"mystore:// \(mine:mystore\) cannot be used as a source"):
        open_source("mystore://x", host=host)
    with pytest.raises(ParameterError, match="did you mean mystore"):
        open_sink("mystor://x", host=host)
    set_host(host)
    try:
        with pytest.raises(
            StoreError, match=r"no model-store backend for 'mystor' URLs.*did you mean mystore"
        ):
            open_store("mystor://x")
    finally:
        set_host(None)


def test_unknown_monitor_lists_the_installed_ones():
    host = PluginHost(autoload=False).load()
    with pytest.raises(
        UnknownAlgorithmError, match=r"^unknown monitor 'lgo'; did you mean log.*; installed monitors: "
    ):
        host.resolve("monitor", "lgo")


def test_plugin_distributions_import_only_public_names():
    """The plugins of this repository import the core's helpers from ``adcore``, not its modules."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    private = (
        "from adcore.plugins import",
        "from adcore.domain.params import",
        "from adcore.domain.events import",
    )
    sources = [*repo.glob("adcore-*/src/**/*.py"), *repo.glob("plugins/*/src/**/*.py")]
    offending = [
        f"{path.relative_to(repo)}: {line.strip()}"
        for path in sources
        for line in path.read_text().splitlines()
        if line.strip().startswith(private)
    ]
    assert sources and not offending
