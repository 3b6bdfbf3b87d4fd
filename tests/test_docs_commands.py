"""The commands in the README and the CLI docs run as written, on the bundled examples.

Every ``adcore ...`` line in a fenced code block of the documents below is run, in order, in
one temporary directory (``examples/`` linked in, its own model store), through bash with
``pipefail``, and must exit 0 without a traceback; a command shown twice runs once. A line
that cannot run here is listed in ``NOT_RUN`` with the reason; synopsis lines (``NAME``,
``FILE``, ``[...]``) are recognised and skipped. A new command in the docs is therefore either
runnable or explained.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "examples/README.md", "docs/cli.md")

NOT_RUN = {
    "tail -f events.jsonl | adcore stream --algo hbos --window 2000 > scored.jsonl": (
        "follows a live file and never exits; streams are tested in tests/test_cli_stream.py"
    ),
    "adcore stream --model payments --source file://events.jsonl --sink file://scored.jsonl "
    "--drift ks --retrain on-drift": "needs a JSON-lines event file the examples do not ship",
    "adcore bench --algo iforest,ecod,copod,hbos,knn --ensemble --datasets examples/bench": (
        "eight seconds of PyOD fits; the same protocol runs above on core detectors, and "
        "examples/README.md's bench runs PyOD's"
    ),
    "ADCORE_API_KEY=... adcore serve --host 127.0.0.1 --port 8001": (
        "starts a server that runs until stopped; tests/test_server_cli.py covers it"
    ),
}
SYNOPSIS = re.compile(r"\[|\b(NAME|FILE|URL|REF|METHOD|KEY|VALUE|N|F)\b")
FENCE = re.compile(r"^```(\w*)\s*$")


def code_block_lines(text: str) -> list[str]:
    """The logical lines of the fenced blocks that are shell (no language, bash or sh)."""
    lines: list[str] = []
    language: str | None = None
    pending = ""
    for raw in text.splitlines():
        fence = FENCE.match(raw.strip())
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language is None or language not in ("", "bash", "sh", "console"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].strip() + " "
            continue
        lines.append((pending + raw.strip()).strip())
        pending = ""
    return [line for line in lines if line]


def adcore_commands(line: str) -> list[str]:
    """The ``adcore`` commands of one line: comment dropped, set-up steps before ``&&`` left out."""
    line = re.sub(r"\s+#.*$", "", line)
    parts = [part.strip() for part in line.split(" && ")]
    return [part for part in parts if re.search(r"(^|\| |\S=\S* )adcore\b", part)]


def documented_commands(document: str) -> list[str]:
    text = (REPO / document).read_text(encoding="utf-8")
    return [cmd for line in code_block_lines(text) for cmd in adcore_commands(line)]


def runnable(commands: list[str]) -> list[str]:
    """The commands to run, each once (the README repeats its demo)."""
    return list(dict.fromkeys(c for c in commands if c not in NOT_RUN and not SYNOPSIS.search(c)))


def run_in(workdir: Path, command: str) -> subprocess.CompletedProcess:
    """Run a documented command with bash, ``adcore`` being this checkout's CLI in this Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(
        ADCORE_HOME=str(workdir / "home"),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        PY=sys.executable,
        COLUMNS="100",
    )
    script = 'adcore() { "$PY" -m adcore.cli.main "$@"; }\n' + command
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _needs_a_missing_plugin(stderr: str) -> bool:
    """The command needs a distribution that is not installed here (a plugin, an extra), and
    says so with its install hint: the core-alone env runs the rest."""
    import importlib.util

    plugin = re.search(r"it is provided by (adcore-[a-z]+) \(pip install", stderr)
    extra = re.search(r"needs ([A-Za-z_][\w.]*)[:,]? .*pip install", stderr)
    module = plugin.group(1).replace("-", "_") if plugin else extra.group(1) if extra else None
    return module is not None and importlib.util.find_spec(module) is None


def test_the_documents_have_commands_and_the_skips_still_exist():
    found = {c for doc in DOCUMENTS for c in documented_commands(doc)}
    for doc in DOCUMENTS:
        assert runnable(documented_commands(doc)), f"no runnable adcore command found in {doc}"
    stale = set(NOT_RUN) - found
    assert not stale, f"NOT_RUN lists commands the docs no longer have: {stale}"


def test_the_readme_documents_seed_and_stdout():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "--seed" in readme and "--format" in readme and "stdout" in readme


@pytest.mark.slow  # about 20 s: one process per command
def test_documented_commands_run(tmp_path):
    # one directory for all documents, in order: a command shown twice runs once
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    done: set[str] = set()
    for document in DOCUMENTS:
        for command in runnable(documented_commands(document)):
            if command in done:
                continue
            done.add(command)
            proc = run_in(tmp_path, command)
            if proc.returncode == 2 and _needs_a_missing_plugin(proc.stderr):
                continue  # the core-alone env (tox -e core); every plugin is installed in the main run
            assert proc.returncode == 0, f"{document}: {command}\n{proc.stderr[-2000:]}"
            assert "Traceback" not in proc.stderr, f"{document}: {command}\n{proc.stderr[-2000:]}"
