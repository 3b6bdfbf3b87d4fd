"""Progress is drawn on stderr when it is a terminal, and never into a pipe.

Each case runs a real process twice: once with stderr on a pseudo-terminal (what a person at
a terminal has), once with stderr on a pipe (a script, a log, CI), and compares.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.pop("FORCE_COLOR", None)  # progress must follow the terminal, whatever CI sets
    env.update(PYTHONPATH=str(REPO), COLUMNS="100")
    return env


def run_with_stderr(
    argv: list[str], *, terminal: bool, cwd: Path, env: dict[str, str], stdout_too: bool = False
) -> tuple[int, str]:
    """Run ``argv``; return its exit code and all it wrote to stderr (pty or pipe).

    ``stdout_too``: stdout is the same terminal, as when a person lets the rows scroll by.
    """
    if not terminal:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
        return proc.returncode, proc.stderr
    leader, follower = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout = follower if stdout_too else subprocess.DEVNULL
        proc = subprocess.run(argv, stdout=stdout, stderr=follower, cwd=cwd, env=env, timeout=120)
    finally:
        os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


SPIN = """
import time
from adcore.cli.progress import status
with status("fitting something", delay=0.2) as shown:
    time.sleep(0.8)
    shown.update("writing the scores")
    time.sleep(0.4)
with status("too quick to show", delay=0.5):
    time.sleep(0.05)
"""

BAR = """
import time
from adcore.cli.progress import bar
with bar("benchmark", 4) as shown:
    for _ in range(4):
        time.sleep(0.15)
        shown.advance()
"""


@pytest.mark.parametrize("terminal", [True, False])
def test_a_spinner_appears_after_its_delay_on_a_terminal_only(tmp_path, terminal):
    code, err = run_with_stderr([sys.executable, "-c", SPIN], terminal=terminal, cwd=tmp_path, env=_env())
    assert code == 0, err
    if terminal:
        assert "fitting something" in err and "writing the scores" in err
        assert "too quick to show" not in err  # finished before its delay: never drawn
    else:
        assert err == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_a_bar_counts_on_a_terminal_only(tmp_path, terminal):
    code, err = run_with_stderr([sys.executable, "-c", BAR], terminal=terminal, cwd=tmp_path, env=_env())
    assert code == 0, err
    assert ("benchmark" in err and "4/4" in err) if terminal else err == ""


def test_force_color_does_not_draw_progress_into_a_pipe(tmp_path):
    env = {**_env(), "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}
    code, err = run_with_stderr([sys.executable, "-c", BAR], terminal=False, cwd=tmp_path, env=env)
    assert code == 0 and err == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_bench_and_score_show_progress_on_a_terminal(tmp_path, terminal):
    env = {**_env(), "ADCORE_STORE": str(tmp_path / "store")}
    cli = [sys.executable, "-m", "adcore.cli.main"]
    bench = [*cli, "bench", "--algo", "core:hbos,core:mad", "--datasets", str(REPO / "examples" / "bench")]
    code, err = run_with_stderr(bench, terminal=terminal, cwd=tmp_path, env=env)
    assert code == 0, err
    assert ("cardio · core:mad" in err) == terminal, err
    data = str(REPO / "examples" / "cardio.csv")
    fit = subprocess.run([*cli, "fit", "-a", "hbos", "-i", data, "-m", "p"], env=env, capture_output=True)
    assert fit.returncode == 0, fit.stderr
    score = [*cli, "score", "-m", "p", "-i", data, "--chunk-size", "200", "-o", str(tmp_path / "s.csv")]
    code, err = run_with_stderr(score, terminal=terminal, cwd=tmp_path, env=env)
    assert code == 0, err
    assert ("scoring with p@1" in err) == terminal, err
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err)  # a terminal also gets colours
    assert "p@1: 183 of 1831 rows anomalous" in plain  # the summary itself, either way


def test_no_bar_while_the_rows_scroll_on_the_same_terminal(tmp_path):
    env = {**_env(), "ADCORE_STORE": str(tmp_path / "store")}
    cli = [sys.executable, "-m", "adcore.cli.main"]
    data = str(REPO / "examples" / "cardio.csv")
    fit = subprocess.run([*cli, "fit", "-a", "hbos", "-i", data, "-m", "p"], env=env, capture_output=True)
    assert fit.returncode == 0, fit.stderr
    score = [*cli, "score", "-m", "p", "-i", data, "--chunk-size", "200"]
    code, seen = run_with_stderr(score, terminal=True, cwd=tmp_path, env=env, stdout_too=True)
    assert code == 0, seen
    assert "score,label" in seen and "scoring with" not in seen
