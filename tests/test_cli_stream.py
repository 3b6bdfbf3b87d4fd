"""``adcore stream`` as a user meets it: real pipes, files, signals, exit codes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adcore.cli.main import run_cli

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["PYTHONPATH"] = str(REPO)
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def adcore_stream(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", "stream", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**_env(), **(env or {})},
        timeout=120,
    )


def popen_stream(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "adcore.cli.main", "stream", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )


class LineReader:
    """Reads the child's stdout line by line with a deadline (``select`` + ``os.read``, never hangs)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buffer = b""

    def line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"no output within {timeout}s"
            chunk = os.read(self.fd, 65536)
            assert chunk, "the stream ended"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def rest(self, proc: subprocess.Popen, timeout: float) -> bytes:
        proc.wait(timeout=timeout)
        assert proc.stdout is not None
        return self.buffer + proc.stdout.read()


def records(n: int, seed: int = 0) -> list[dict]:
    X = np.random.default_rng(seed).normal(size=(n, 3))
    return [{"id": f"r{i}", "a": float(a), "b": float(b), "c": float(c)} for i, (a, b, c) in enumerate(X)]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# ----------------------------------------------------------------------- end to end
def test_stream_through_real_stdin_and_stdout():
    rows = records(300)
    text = jsonl(rows[:150]) + "this is not json\n" + jsonl(rows[150:])
    proc = adcore_stream("--algo", "hbos", "--window", "100", "--batch-size", "64", stdin=text)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    # core:hbos is scored after a 50-record warm-up (sized to the detector), not a whole window
    assert all(r["warmup"] for r in out[:50]) and all(isinstance(r["score"], float) for r in out[50:])
    assert set(out[150]) == {"id", "score", "label"}
    err = proc.stderr.splitlines()
    assert err[0].startswith("skipped line 151: not JSON")
    assert err[-1].startswith("stream: 300 records (50 warm-up), 1 malformed")


def test_files_events_dead_letter_and_log_monitor(tmp_path: Path):
    source = tmp_path / "in.jsonl"
    rows = records(400)
    source.write_text(jsonl(rows[:200]) + '{"id": "bad", "a": "x", "b": 1, "c": 2}\n' + jsonl(rows[200:]))
    out, events, letters = tmp_path / "out.jsonl", tmp_path / "events.jsonl", tmp_path / "dead.jsonl"
    proc = adcore_stream(
        "--source", f"file://{source}", "--sink", f"file://{out}", "--events", f"file://{events}",
        "--dead-letter", f"file://{letters}", "--monitor", "log", "--algo", "core:hbos", "--window", "100",
        "--retrain", "every:100",
        "--batch-size", "50", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 400
    (letter,) = [json.loads(line) for line in letters.read_text().splitlines()]
    assert letter["line_number"] == 201 and "'a' is not a finite number" in letter["error"]
    published = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = {e["type"] for e in published}
    assert {"detection.completed", "anomaly.detected", "model.retrained"} <= kinds
    assert [e["reason"] for e in published if e["type"] == "model.retrained"] == ["initial", "growing"] + [
        "periodic"
    ] * 3
    completed = [e for e in published if e["type"] == "detection.completed"]
    assert sum(e["records"] for e in completed) == 400 and sum(e["malformed"] for e in completed) == 1
    anomalies = [e for e in published if e["type"] == "anomaly.detected"]
    assert all(e["record_id"].startswith("r") for e in anomalies)
    logged = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [e["id"] for e in logged] == [e["id"] for e in published]  # the log monitor saw the same events


def test_stream_from_a_registry_model(tmp_path: Path):
    import adcore

    store = str(tmp_path / "store")
    X = np.random.default_rng(1).normal(size=(200, 3))
    adcore.fit(X, algo="core:hbos", columns=["a", "b", "c"], name="payments", store=store)
    proc = adcore_stream("--model", "payments", "--store", store, "-q", stdin=jsonl(records(20)))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 20 and {r["model"] for r in out} == {"payments@1"}
    assert not any(r.get("warmup") for r in out)


# ------------------------------------------------------------------- latency, signals
def test_max_delay_flushes_a_partial_batch_before_eof():
    proc = popen_stream(
        "--algo", "core:hbos", "--window", "50", "--batch-size", "1000", "--max-delay-ms", "100"
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(b'{"id": "first", "a": 1.0, "b": 2.0}\n')
        proc.stdin.flush()  # and keep the pipe open: no EOF
        line = LineReader(proc).line(timeout=30)
        assert json.loads(line) == {"id": "first", "score": None, "label": None, "warmup": True}
        assert proc.poll() is None  # still running, waiting for more
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_finishes_and_flushes_the_current_batch():
    proc = popen_stream("--window", "5", "--batch-size", "2", "--max-delay-ms", "60000", "-q")
    assert proc.stdin is not None
    try:
        proc.stdin.write(jsonl(records(2)).encode())  # a full batch: proves the loop runs
        proc.stdin.flush()
        reader = LineReader(proc)
        first = [reader.line(timeout=30), reader.line(timeout=30)]
        proc.stdin.write(jsonl(records(3)[2:]).encode())  # half a batch, due in 60 s
        proc.stdin.flush()
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = reader.rest(proc, timeout=30)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - started < 20  # did not wait for the 60 s deadline
        ids = [json.loads(line)["id"] for line in first + rest.splitlines()]
        assert ids == ["r0", "r1", "r2"]
    finally:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------- bad options
def test_bad_option_fails_before_reading(capfd, tmp_path):
    cases = [
        (["--window", "1"], "--window"),
        (["--retrain", "sometimes"], "--retrain"),
        (["--retrain", "on-drift"], "needs a drift detector"),
        (["--drift", "cusum"], "--drift"),
        (["--drift", "page-hinkley", "--drift-on", "features"], "score stream only"),
        (["--drift", "ks", "--drift-param", "windw=5"], "windw"),
        (["--drift", "ks", "--drift-param", "window"], "KEY=VALUE"),
        (["--algo", "nosuch"], "unknown algorithm"),
        (["--param", "n_bins=many"], "n_bins"),
        (["--monitor", "nosuch"], "unknown monitor"),
        (["--events", "nosuch://x"], "nosuch://"),
        (["--source", f"file://{tmp_path}/missing.jsonl"], "no such file"),
        (["--sink", f"file://{tmp_path}/no/dir/out.jsonl"], "folder does not exist"),
        (["--model", "nosuch", "--store", str(tmp_path / "store")], "store"),  # no store there (K7)
        (["--model", "m", "--algo", "hbos"], "cannot be combined with --model"),
        (["--window-type", "hopping"], "--window-type"),
    ]
    for args, needle in cases:
        code = run_cli(["stream", *args])
        _, err = capfd.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, err)


@pytest.mark.parametrize("flag", ["--window-type", "--drift-on"])
def test_help_lists_choices(capfd, flag):
    assert run_cli(["stream", "--help"]) == 0
    assert flag in capfd.readouterr().out


# ------------------------------------------------------------------ summary, seed
def test_summary_counts_read_right_and_name_the_seed_that_repeats_the_run():
    text = jsonl(records(150))
    proc = adcore_stream("--window", "100", "--warmup", "100", "--retrain", "never", stdin=text)
    assert proc.returncode == 0, proc.stderr
    summary = proc.stderr.splitlines()[-1]
    assert summary.startswith("stream: 150 records (100 warm-up), 0 malformed, ")
    assert ", 0 drifts, 1 fit in " in summary  # not "1 fits"
    seed = int(summary.rsplit("seed ", 1)[1])
    again = adcore_stream(
        "--window", "100", "--warmup", "100", "--retrain", "never", "--seed", str(seed), stdin=text
    )  # fmt: skip
    assert again.stdout == proc.stdout and again.stderr.splitlines()[-1].endswith(f"seed {seed}")


# ------------------------------------------------------- errors inside a stream
STREAM_ERRORS_PLUGIN = """
import numpy as np
import adcore


class PositiveOnly:
    '''Log-scale distance: a record with a value <= 0 cannot be scored.'''

    def fit(self, X, y=None):
        self.mean_ = np.log(np.abs(X) + 1e-9).mean(axis=0)
        return self

    def decision_function(self, X):
        if (X <= 0).any():
            raise ValueError("log-scale scores need values > 0")
        return np.abs(np.log(X) - self.mean_).sum(axis=1)


class NeedsVariance:
    '''Refuses to fit a constant feature, as many libraries do.'''

    def fit(self, X, y=None):
        if (X.std(axis=0) == 0).any():
            raise ValueError("a feature has zero variance in the training data")
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return np.abs(X - self.mean_).sum(axis=1)


class Neighbours:
    '''Distance to the k-th nearest training row: needs more than k rows, as PyOD's knn.'''

    def __init__(self, k=5):
        self.k = k

    def fit(self, X, y=None):
        if self.k >= len(X):
            raise ValueError(f"Expected k < n_samples, but k = {self.k}, n_samples = {len(X)}")
        self.X_ = X
        return self

    def decision_function(self, X):
        d = np.sqrt(((X[:, None, :] - self.X_[None, :, :]) ** 2).sum(axis=2))
        return np.sort(d, axis=1)[:, self.k]


class Broken(NeedsVariance):
    '''Its scoring has a bug.'''

    def decision_function(self, X):
        raise RuntimeError("index out of sync")


@adcore.hookimpl
def register_detectors(register):
    register("positive", PositiveOnly, summary="log-scale distance")
    register("needs-variance", NeedsVariance, summary="refuses constant features")
    register("neighbours", Neighbours, summary="k-th neighbour distance")
    register("broken", Broken, summary="a bug")
"""


@pytest.fixture
def errors_site(plugin_site):
    plugin_site.add(
        "adcore-streamerrors", {"errs": "adcore_streamerrors"}, {"adcore_streamerrors": STREAM_ERRORS_PLUGIN}
    )
    plugin_site.env["ADCORE_PLUGINS"] = "errs"  # this plugin and the core only: quick start
    return plugin_site


def test_records_the_detector_refuses_go_to_the_dead_letters(errors_site, tmp_path: Path):
    X = np.exp(np.random.default_rng(4).normal(size=(200, 2)))
    X[[120, 150], 0] = -3.0
    text = "".join(json.dumps({"id": i, "a": a, "b": b}) + "\n" for i, (a, b) in enumerate(X.tolist()))
    letters = tmp_path / "dead.jsonl"
    proc = errors_site.run(
        "stream", "--algo", "errs:positive", "--window", "100", "--batch-size", "32",
        "--dead-letter", f"file://{letters}", stdin=text,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == [
        i for i in range(200) if i not in (120, 150)
    ]
    dead = [json.loads(line) for line in letters.read_text().splitlines()]
    assert [d["line_number"] for d in dead] == [121, 151]
    assert dead[0]["error"] == "errs:positive rejected the data (1 row): log-scale scores need values > 0"
    assert ", 0 malformed, 2 rejected by the detector, " in proc.stderr.splitlines()[-1]


def test_a_failed_refit_is_an_event_and_the_previous_model_scores_on(errors_site, tmp_path: Path):
    X = np.random.default_rng(5).normal(size=(120, 2))
    X[40:80] = 1.0  # a window a refit cannot use
    text = "".join(json.dumps({"id": i, "a": a, "b": b}) + "\n" for i, (a, b) in enumerate(X.tolist()))
    events = tmp_path / "events.jsonl"
    proc = errors_site.run(
        "stream", "--algo", "errs:needs-variance", "--window", "40", "--retrain", "every:40",
        "--events", f"file://{events}", stdin=text,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 120
    published = [json.loads(line) for line in events.read_text().splitlines()]
    (failed,) = [e for e in published if e["type"] == "model.refit_failed"]
    assert (failed["reason"], failed["offset"], failed["error_type"]) == ("periodic", 80, "DataError")
    assert "zero variance" in failed["error"] and failed["algorithm"] == "errs:needs-variance"
    assert "periodic refit at record 80 failed" in proc.stderr
    assert ", 2 fits (1 failed refit) in " in proc.stderr.splitlines()[-1]


def test_a_first_fit_that_cannot_work_exits_2_before_writing_anything(errors_site):
    proc = errors_site.run(
        "stream", "--algo", "errs:neighbours", "--param", "k=500", "--window", "100", "--batch-size", "10",
        stdin=jsonl(records(300)),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""  # not one warm-up record that would suggest all is well
    notice, line = proc.stderr.splitlines()  # the 10 records read are accounted for
    assert notice.startswith("10 records read but not written (lines 1-10; a dead-letter sink keeps them)")
    assert line.startswith("error: errs:neighbours cannot be fitted on a warm-up of 100 records with k=500: ")
    assert "Expected k < n_samples" in line


def _constant_rows(n: int) -> str:
    """Records whose feature ``b`` never varies: only the real first fit can refuse them."""
    rows = records(n)
    return "".join(json.dumps({"id": r["id"], "a": r["a"], "b": 1.0}) + "\n" for r in rows)


def test_a_failed_first_fit_emits_the_warmup_records_it_read_and_dead_letters_the_rest(
    errors_site, tmp_path: Path
):
    """D4: stdin cannot be replayed, so every record read is in the output or the dead letters."""
    letters = tmp_path / "dead.jsonl"
    proc = errors_site.run(
        "stream", "--algo", "errs:needs-variance", "--window", "25", "--batch-size", "10",
        "--dead-letter", f"file://{letters}", stdin=_constant_rows(100),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "zero variance" in proc.stderr.splitlines()[-1]
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in out] == [f"r{i}" for i in range(25)]  # the whole warm-up, batch 3 too
    assert all(r["warmup"] is True and r["score"] is None for r in out)
    dead = [json.loads(line) for line in letters.read_text().splitlines()]
    assert [d["line_number"] for d in dead] == list(range(26, 31))  # the rest of the third batch
    assert json.loads(dead[0]["line"])["id"] == "r25"
    assert dead[0]["error"].startswith("not scored: the stream stopped: ")


def test_a_failed_first_fit_without_dead_letters_still_says_which_lines_were_not_written(errors_site):
    proc = errors_site.run(
        "stream", "--algo", "errs:needs-variance", "--window", "25", "--batch-size", "10",
        stdin=_constant_rows(100),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stdout.splitlines()) == 25
    notice, error = proc.stderr.splitlines()
    assert notice.startswith("5 records read but not written (lines 26-30; ")
    assert error.startswith("error: ") and "zero variance" in error


def test_a_bug_while_scoring_still_writes_what_was_read_before_exit_1(errors_site, tmp_path: Path):
    letters = tmp_path / "dead.jsonl"
    proc = errors_site.run(
        "stream", "--algo", "errs:broken", "--window", "20", "--batch-size", "25",
        "--dead-letter", f"file://{letters}", stdin=jsonl(records(50)),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    # The first fit scores its training rows, which is where the bug strikes.
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == [f"r{i}" for i in range(20)]
    dead = [json.loads(line) for line in letters.read_text().splitlines()]
    assert [d["line_number"] for d in dead] == list(range(21, 26))
    assert "unexpected RuntimeError: index out of sync" in dead[0]["error"]


def test_an_untyped_error_inside_the_detector_is_still_a_bug(errors_site):
    proc = errors_site.run("stream", "--algo", "errs:broken", "--window", "20", stdin=jsonl(records(50)))
    assert proc.returncode == 1
    assert "unexpected RuntimeError: index out of sync (this is a bug" in proc.stderr.splitlines()[-1]


def test_pyod_knn_with_more_neighbours_than_the_window_exits_2_naming_them():
    pytest.importorskip("adcore_pyod")
    proc = adcore_stream(
        "--algo", "pyod:knn", "--param", "n_neighbors=5000", "--window", "100", "--batch-size", "10",
        stdin=jsonl(records(300)), env={"ADCORE_DISABLE_PLUGIN_AUTOLOAD": "0", "ADCORE_PLUGINS": "pyod"},
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    notice, line = proc.stderr.splitlines()  # the records read are accounted for, then the error
    assert notice.startswith("10 records read but not written (lines 1-10;")
    assert "pyod:knn" in line and "n_neighbors=5000" in line
