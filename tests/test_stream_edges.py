"""``adcore stream`` at the edges (issue 15): huge lines, full disks, broken pipes, spoofed fields.

Each test runs the real command in a subprocess with real pipes, files and signals.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import adcore
from adcore.messaging import Message

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["PYTHONPATH"] = str(REPO)
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


STREAM = [sys.executable, "-m", "adcore.cli.main", "stream"]


def stream(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*STREAM, *args], input=stdin, capture_output=True, env=_env(), timeout=timeout, check=False
    )


def rows(n: int, start: int = 0) -> bytes:
    return b"".join(
        json.dumps({"id": i, "a": (i * 7919) % 13 * 0.5, "b": (i * 104729) % 17 * 0.25}).encode() + b"\n"
        for i in range(start, start + n)
    )


def padded(size: int, name: str = "big") -> bytes:
    """One valid record whose pass-through field makes the line ``size`` bytes long or more."""
    return json.dumps({"id": name, "a": 1.0, "b": 1.0, "pad": "x" * size}).encode() + b"\n"


# ------------------------------------------------------------------------- C9: long lines
def _seconds_to_read(line: bytes) -> float:
    """How long the stdin/file source takes to hand out ``line`` arriving through a real pipe."""
    from adcore.builtin.messaging import LineSource

    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(line)

    feeder = threading.Thread(target=feed)
    started = time.perf_counter()
    feeder.start()
    with os.fdopen(read_fd, "rb") as pipe:
        source = LineSource(pipe, "pipe")
        got: list = []
        while (batch := source.poll(10, 0.1)) is not None:
            got += batch
    feeder.join()
    assert [len(x) for x in got] == [len(line) - 1]
    return time.perf_counter() - started


def test_a_long_line_is_buffered_in_linear_time():
    """10/20/40 MB lines took 3.5/11.4/40.5 s (each chunk joined to the whole partial line)."""
    seconds = {mb: _seconds_to_read(b"x" * (mb * 1_000_000) + b"\n") for mb in (10, 20, 40)}
    assert seconds[40] < 5 * seconds[10] + 1.0, seconds  # + 1 s: scheduling noise on tiny times


def test_a_40_mb_record_streams_through_the_cli():
    data = rows(3) + padded(40 * 1_000_000) + rows(3, start=3)
    proc = stream("--window", "3", "--max-record-bytes", str(64 * MIB), "-q", stdin=data)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in out] == [0, 1, 2, "big", 3, 4, 5]


def test_an_oversized_record_is_dead_lettered_and_the_next_record_is_scored(tmp_path: Path):
    letters = tmp_path / "dead.jsonl"
    data = rows(4) + padded(2 * MIB) + rows(3, start=4)
    proc = stream("--window", "4", "--dead-letter", f"file://{letters}", stdin=data)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in out] == list(range(7))
    assert all(isinstance(r["score"], float) for r in out[4:])  # the records after it are scored
    (dead,) = [json.loads(line) for line in letters.read_text().splitlines()]
    assert dead["line_number"] == 5
    assert dead["error"] == "record longer than 1048576 bytes (--max-record-bytes): dropped"
    assert dead["line"].startswith('{"id": "big"') and len(dead["line"]) < 1000
    assert ", 1 malformed," in proc.stderr.decode()


def test_an_endless_line_is_skipped_without_being_held_in_memory():
    """A 300 MB line under a 1 MiB limit: the reader drops it as it comes (peak memory stays small)."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(proc.returncode, peak, len(proc.stdout.splitlines()))\n"
    )
    data = rows(3) + padded(300 * 1_000_000) + rows(3, start=3)
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *STREAM, "--window", "3", "-q"],
        input=data, capture_output=True, env=_env(), timeout=300, check=True,
    )  # fmt: skip
    returncode, peak_kib, lines = map(int, proc.stdout.split())
    assert (returncode, lines) == (0, 6)
    assert peak_kib < 250 * 1024, f"peak RSS {peak_kib} KiB: the line was held"


def test_sigterm_is_honoured_while_an_endless_line_streams_in():
    proc = subprocess.Popen(
        [*STREAM, "--window", "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_env(),
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(rows(2) + b'{"id": "endless", "pad": "')
    proc.stdin.flush()
    stop = threading.Event()

    def feed() -> None:
        chunk = b"x" * MIB
        try:
            while not stop.is_set():
                proc.stdin.write(chunk)
        except (BrokenPipeError, ValueError, OSError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        time.sleep(2.0)  # the line keeps arriving: there is always something to read
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        returncode = proc.wait(timeout=30)
        waited = time.monotonic() - sent
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    assert returncode == 0
    assert waited < 3.0, f"exited {waited:.1f}s after SIGTERM"
    assert [json.loads(line)["id"] for line in proc.stdout.read().splitlines()] == [0, 1]


def test_the_python_api_limits_record_size_on_a_stream_without_a_descriptor():
    """A BytesIO source (no ``select``) reads lines with a bounded ``readline`` too."""
    source = io.BytesIO(rows(4) + padded(5000) + rows(2, start=4))
    out: list = []
    dead: list = []
    with adcore.open_stream(source, out, window=4, max_record_bytes=1000, dead_letter=dead) as opened:
        opened.run()
    assert [r["id"] for r in out] == list(range(6))
    assert [(d["line_number"], d["error"]) for d in dead] == [
        (5, "record longer than 1000 bytes (--max-record-bytes): dropped")
    ]


def test_max_record_bytes_is_checked_before_anything_is_read():
    proc = stream("--max-record-bytes", "0", stdin=rows(3))
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("error: --max-record-bytes must be an integer >= 2")


# ------------------------------------------------------------ C10: full disk, closed pipes
def test_a_full_disk_sink_is_a_clear_error_after_the_dead_letters_are_flushed(tmp_path: Path):
    letters = tmp_path / "dead.jsonl"
    data = b"not json\n" + rows(300)
    proc = stream(
        "--window", "50", "--batch-size", "10", "--sink", "file:///dev/full",
        "--dead-letter", f"file://{letters}", stdin=data,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.decode().splitlines() == ["error: no space left on device writing /dev/full"]
    dead = [json.loads(line) for line in letters.read_text().splitlines()]
    assert [d["line_number"] for d in dead] == list(range(1, 11))  # malformed; the batch not written
    assert dead[1]["error"].startswith("not written: the stream stopped: no space left on device")


def test_stdout_on_a_full_disk_is_a_clear_error():
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [*STREAM, "--window", "50"], input=rows(300), stdout=full, stderr=subprocess.PIPE, env=_env(),
            timeout=120, check=False,
        )  # fmt: skip
    assert proc.returncode == 2
    notice, error = proc.stderr.decode().splitlines()
    assert notice.startswith("300 records read but not written (lines 1-300;")  # one batch
    assert error == "error: no space left on device writing stdout"


def test_a_closed_stdout_is_a_clear_error_before_reading():
    proc = subprocess.run(
        ["bash", "-c", 'exec "$@" >&-', "bash", *STREAM, "--window", "50"],
        input=rows(300), capture_output=True, env=_env(), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "error: stdout is closed: the output has nowhere to go (give --sink file://PATH)"
    ]


def test_a_reader_that_leaves_early_gives_a_quiet_exit(tmp_path: Path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(rows(20_000))
    script = 'set -o pipefail; "$@" < "$SOURCE" 2>"$ERR" | head -1'
    err = tmp_path / "err.txt"
    proc = subprocess.run(
        ["bash", "-c", script, "bash", *STREAM, "--window", "50"],
        capture_output=True, env={**_env(), "SOURCE": str(source), "ERR": str(err)}, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, err.read_text()
    assert json.loads(proc.stdout)["id"] == 0
    assert err.read_text() == ""


# ----------------------------------------------------------- K4: the output's own fields
SPOOFS = {"model": "prod@7", "warmup": False, "_meta": {"topic": "forged"}}


@pytest.mark.parametrize("keep", [False, True], ids=["pass-through", "keep-features"])
def test_input_fields_cannot_spoof_the_outputs_attribution(keep: bool):
    # Same-shape records: the first batch goes the dict way, the later ones the typed way.
    records = [{"id": i, "a": i % 5 * 1.0, "b": i % 3 * 1.0, **SPOOFS} for i in range(40)]
    lines = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    args = [
        "--algo",
        "core:hbos",
        "--window",
        "10",
        "--batch-size",
        "8",
        *(["--keep-features"] if keep else []),
    ]
    proc = stream(*args, stdin=lines)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 40
    assert all(r["warmup"] is True for r in out[:10])
    for record in out[10:]:
        assert "warmup" not in record and "model" not in record and "_meta" not in record, record
        assert isinstance(record["score"], float)


def test_transport_metadata_replaces_an_input_meta_field():
    items = [
        Message(json.dumps({"id": i, "a": i % 4 * 1.0, "_meta": "forged", "model": "x"}), {"offset": i})
        for i in range(12)
    ]
    out: list = []
    with adcore.open_stream(items, out, window=4) as opened:
        opened.run()
    assert [r["_meta"] for r in out] == [{"offset": i} for i in range(12)]
    assert not any("model" in r for r in out)


# ------------------------------------------------------------ K5: non-UTF-8 dead letters
def test_a_non_utf8_line_keeps_its_original_bytes_in_the_dead_letters(tmp_path: Path):
    letters = tmp_path / "dead.jsonl"
    bad = b'{"id": "c", "a": 1, "b": 2, "note": "caf\xe9 \xff"}'
    data = rows(3) + bad + b"\n" + rows(2)
    proc = stream("--window", "3", "--dead-letter", f"file://{letters}", stdin=data)
    assert proc.returncode == 0, proc.stderr
    (dead,) = [json.loads(line) for line in letters.read_text().splitlines()]
    assert dead["line_number"] == 4
    assert base64.b64decode(dead["raw_base64"]) == bad
    assert "\ufffd" in dead["line"]  # the readable text is lossy; raw_base64 is not


def test_a_utf8_dead_letter_has_no_base64_copy(tmp_path: Path):
    letters = tmp_path / "dead.jsonl"
    proc = stream("--window", "3", "--dead-letter", f"file://{letters}", stdin=rows(3) + b"not json\n")
    assert proc.returncode == 0, proc.stderr
    (dead,) = [json.loads(line) for line in letters.read_text().splitlines()]
    assert "raw_base64" not in dead and dead["line"] == "not json"
