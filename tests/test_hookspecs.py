"""Every hook is documented, tested, and works through a real entry point.

In the spirit of datasette's tests/test_docs.py and test_plugins.py: a hook without a
``### name(`` heading in docs/plugins.md, or without a ``test_hook_<name>`` test
somewhere in the repository, fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adcore import hookspecs
from tests.conftest import MAXABS_PLUGIN

REPO = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("register_"))


def test_hooks_are_known():
    assert {
        "register_detectors",
        "register_storage",
        "register_monitors",
        "register_messaging",
        "register_commands",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    docs = (REPO / "docs" / "plugins.md").read_text()
    assert re.search(rf"^###\s+`?{hook}\(", docs, re.M), f"docs/plugins.md has no '### {hook}(...)' heading"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


PORT_KEYWORDS = [(port.hook, keyword) for port in hookspecs.PORTS for keyword in port.keywords]


def _docs_section(hook: str) -> str:
    """The text of docs/plugins.md under ``### hook(`` up to the next heading of that level."""
    docs = (REPO / "docs" / "plugins.md").read_text()
    match = re.search(rf"^###\s+`?{hook}\(.*?(?=^##)", docs, re.M | re.S)
    assert match, f"docs/plugins.md has no '### {hook}(...)' section"
    return match.group(0)


def test_every_port_is_a_register_hook():
    """Each hook taking a ``register`` callback is a port declaring its keywords, and vice versa."""
    takes_register = {h for h in HOOKS if "register" in getattr(hookspecs, h).__code__.co_varnames}
    assert {p.hook for p in hookspecs.PORTS} == takes_register
    assert len({p.kind for p in hookspecs.PORTS}) == len(hookspecs.PORTS)


@pytest.mark.parametrize(("hook", "keyword"), PORT_KEYWORDS)
def test_every_registration_keyword_is_documented(hook, keyword):
    """Each keyword a port accepts is in its hook's ``:param register:`` text and its docs section."""
    doc = getattr(hookspecs, hook).__doc__ or ""
    param = doc.split(":param register:", 1)
    assert len(param) == 2, f"{hook} documents no ':param register:'"
    assert f"{keyword}=" in param[1], f"{hook}'s ':param register:' does not show {keyword}="
    section = _docs_section(hook)
    assert re.search(rf"`{keyword}[`=]", section), (
        f"docs/plugins.md's {hook} section does not document {keyword}"
    )


@pytest.mark.parametrize(("hook", "keyword"), PORT_KEYWORDS)
def test_every_registration_keyword_is_checked(hook, keyword):
    from adcore.plugins import KEYWORD_CHECKS

    assert keyword in KEYWORD_CHECKS, f"{keyword} (accepted by {hook}) has no value check in KEYWORD_CHECKS"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    sources = [p.read_text() for p in REPO.glob("**/tests/**/*.py") if ".venv" not in p.parts]
    assert any(f"def test_hook_{hook}(" in s for s in sources), f"no test named test_hook_{hook}"


def test_hook_register_detectors(plugin_site, csv_file):
    plugin_site.add("maxabs-plugin", {"mx": "mx_mod"}, {"mx_mod": MAXABS_PLUGIN})
    shown = plugin_site.run_json("algos", "show", "mx:maxabs")
    assert shown["summary"] == "largest robust z-score" and shown["parameters"] == []
    proc = plugin_site.run("run", "--algo", "mx:maxabs", "--input", str(csv_file), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_anomalies"] == 20


STORE_PLUGIN = """
import adcore
from adcore.stores.sqlite import open_store as sqlite_store

def open_store(url):
    # "mystore://DIR" is the embedded store under another name: enough to prove the port
    return sqlite_store("file://" + url.split("://", 1)[1])

@adcore.hookimpl
def register_storage(register):
    register("mystore", open_store, summary="test store")
"""


def test_hook_register_storage(plugin_site, csv_file, tmp_path):
    plugin_site.add("store-plugin", {"st": "st_mod"}, {"st_mod": STORE_PLUGIN})
    url = f"mystore://{tmp_path / 'models'}"
    proc = plugin_site.run(
        "fit", "--algo", "core:hbos", "--input", str(csv_file), "--model", "m", "--store", url
    )
    assert proc.returncode == 0, proc.stderr
    listed = plugin_site.run_json("models", "--store", url)
    assert [m["name"] for m in listed] == ["m"]
    assert (tmp_path / "models").is_dir()


EXECUTOR_PLUGIN = """
import adcore
from adcore.services.executors import LocalExecutor, fit_and_save

class InProcess:
    # Hands every job to the local executor and says so in its summary: a plugin's
    # executor sees only the job objects, never the CLI.
    name = "inproc"

    def __init__(self, text):
        self.text = text
        self.local = LocalExecutor()

    def score(self, job, progress=None):
        progress.said(f"inproc executor {self.text} scoring {job.model}")
        summary = self.local.score(job, progress)
        return {**summary, "executor": self.name, "address": self.text}

    def fit(self, job, progress=None):
        outcome = self.local.fit(job, progress)
        outcome.summary["executor"] = self.name
        return outcome

    def close(self):
        pass

@adcore.hookimpl
def register_executors(register):
    register("inproc", InProcess, summary="the local executor under another name")
"""


def test_hook_register_executors(plugin_site, csv_file, tmp_path):
    plugin_site.add("exec-plugin", {"ex": "ex_mod"}, {"ex_mod": EXECUTOR_PLUGIN})
    store = str(tmp_path / "models")
    fitted = plugin_site.run_json(
        "fit",
        "--algo",
        "core:hbos",
        "--input",
        str(csv_file),
        "--model",
        "m",
        "--store",
        store,
        "--seed",
        "3",
        "--executor",
        "inproc://somewhere",
        "--json",
    )
    assert fitted["job"]["executor"] == "inproc" and fitted["ref"] == "m@1"
    out = tmp_path / "scores.csv"
    proc = plugin_site.run(
        "score",
        "--model",
        "m",
        "--store",
        store,
        "--input",
        str(csv_file),
        "--output",
        str(out),
        "--executor",
        "inproc://somewhere",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["executor"] == "inproc" and summary["address"] == "inproc://somewhere"
    assert "inproc executor inproc://somewhere scoring m@1" in proc.stderr
    local = tmp_path / "local.csv"
    proc = plugin_site.run(
        "score", "--model", "m", "--store", store, "--input", str(csv_file), "--output", str(local)
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == local.read_bytes()
    unknown = plugin_site.run(
        "score",
        "--model",
        "m",
        "--store",
        store,
        "--input",
        str(csv_file),
        "--output",
        str(tmp_path / "x"),
        "--executor",
        "inprc",
    )
    assert unknown.returncode == 2 and "did you mean inproc" in unknown.stderr


MONITOR_PLUGIN = """
import json, os
import adcore

class FileMonitor:
    def __init__(self, **options):
        self.path = os.environ["MONITOR_OUT"]
    def record(self, event):
        with open(self.path, "a") as f:
            f.write(json.dumps(event.to_dict() if hasattr(event, "to_dict") else event) + "\\n")

@adcore.hookimpl
def register_monitors(register):
    register("filemon", FileMonitor, summary="events to a file")
"""


def test_hook_register_monitors(plugin_site, tmp_path):
    plugin_site.add("mon-plugin", {"mon": "mon_mod"}, {"mon_mod": MONITOR_PLUGIN})
    out = tmp_path / "events.jsonl"
    records = "\n".join(json.dumps({"a": float(i % 7), "b": float(i % 5)}) for i in range(300)) + "\n"
    proc = plugin_site.run(
        "stream",
        "--algo",
        "core:hbos",
        "--window",
        "100",
        "--monitor",
        "filemon",
        env={"MONITOR_OUT": str(out)},
        stdin=records,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events and {e["type"] for e in events} >= {"detection.completed"}


MESSAGING_PLUGIN = """
import os
import adcore

class ListSource:
    def __init__(self, url, **options):
        self.lines = [b'{"a": %d, "b": %d}' % (i % 7, i % 5) for i in range(250)]
    def __iter__(self):
        return iter(self.lines)
    def commit(self):
        pass
    def close(self):
        pass

@adcore.hookimpl
def register_messaging(register):
    register("gen", ListSource, kind="source", summary="generated records")
"""


def test_hook_register_messaging(plugin_site, tmp_path):
    plugin_site.add("msg-plugin", {"gen": "gen_mod"}, {"gen_mod": MESSAGING_PLUGIN})
    out = tmp_path / "scored.jsonl"
    proc = plugin_site.run(
        "stream", "--algo", "core:hbos", "--window", "50", "--source", "gen://x", "--sink", f"file://{out}"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 250 and "score" in rows[-1]


COMMAND_PLUGIN = '''
import adcore

@adcore.hookimpl
def register_commands(cli):
    @cli.command("hello")
    def hello(name: str = "world"):
        """Say hello."""
        print(f"hello {name}")
'''


def test_hook_register_commands(plugin_site):
    plugin_site.add("cmd-plugin", {"cmd": "cmd_mod"}, {"cmd_mod": COMMAND_PLUGIN})
    proc = plugin_site.run("hello", "--name", "adcore")
    assert proc.returncode == 0 and proc.stdout.strip() == "hello adcore"
    assert "hello" in plugin_site.run("--help").stdout
