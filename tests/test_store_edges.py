"""The embedded model store at its edges: a vanished or replaced index, a corrupt one, a read-only one.

Issue 15, items D2, C7 and C8, as a user meets them: the real CLI in a subprocess, a real
``adcore serve``, real files (and a real read-only bind mount where the system allows one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import REPO, running_server, training_rows

import adcore
from adcore.errors import StoreError, StoreUnavailableError
from adcore.stores.sqlite import INDEX_FILE, SQLiteStore


def adcore_cli(store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(ADCORE_STORE=str(store), ADCORE_HOME=str(store.parent / "home"))
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 with one 'error:' line naming what is wrong (never a traceback, never exit 1)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    rows = training_rows(200, 3)
    path.write_text("a,b,c\n" + "\n".join(",".join(str(v) for v in row) for row in rows) + "\n")
    return path


@pytest.fixture
def fitted_store(tmp_path: Path, train_file: Path) -> Path:
    """A store with one model, m@1, fitted by the CLI."""
    store = tmp_path / "store"
    proc = adcore_cli(
        store, "fit", "--algo", "core:hbos", "--input", str(train_file), "--model", "m", "--seed", "0"
    )
    assert proc.returncode == 0, proc.stderr
    return store


# ------------------------------------------------------------------ D2: the index goes away
@pytest.mark.service  # a real adcore serve: needs the server extra
def test_deleting_the_index_under_a_running_server_is_noticed(tmp_path: Path) -> None:
    store = tmp_path / "models"
    body = {"name": "m", "algorithm": "core:hbos", "data": training_rows(60, 3), "seed": 0}
    with running_server(tmp_path, store=str(store)) as server, server.client() as http:
        assert http.post("/v1/models", json=body).status_code == 201
        assert http.post("/v1/models", json=body).json()["ref"] == "m@2"
        assert http.get("/health/readiness").status_code == 200
        (store / INDEX_FILE).unlink()
        ready = http.get("/health/readiness")
        assert ready.status_code == 503, ready.text
        assert "index" in ready.json()["error"]["message"]
        for _ in range(2):  # the thread's open store, then a fresh open: both refuse
            refused = http.post("/v1/models", json=body)
            assert refused.status_code == 503, refused.text
            assert "deleted" in refused.json()["error"]["message"]
        listed = http.get("/v1/models")
        assert listed.status_code == 503, listed.text
        assert not (store / INDEX_FILE).exists()  # never recreated over the artifacts
        assert server.process.poll() is None


def test_a_replaced_index_is_refused_by_a_process_that_used_the_old_one(tmp_path: Path, train_file) -> None:
    store = tmp_path / "store"
    other = tmp_path / "other"
    adcore.fit(train_file, name="m", store=str(store), seed=0)
    adcore.fit(train_file, name="x", store=str(other), seed=0)
    with contextlib.closing(SQLiteStore(str(store))) as opened:
        shutil.copy(other / INDEX_FILE, store / "replacement")
        os.replace(store / "replacement", store / INDEX_FILE)
        with pytest.raises(StoreUnavailableError, match="replaced"):
            opened.list()
    with pytest.raises(StoreUnavailableError, match="replaced"):  # a fresh open in this process too
        adcore.fit(train_file, name="m", store=str(store), seed=0)


def test_a_deleted_index_is_never_recreated_over_artifacts(fitted_store: Path, train_file: Path) -> None:
    (fitted_store / INDEX_FILE).unlink()
    fit = adcore_cli(fitted_store, "fit", "--algo", "core:hbos", "--input", str(train_file), "--model", "m")
    one_line_error(fit, "artifacts but no index")
    one_line_error(adcore_cli(fitted_store, "models"), str(fitted_store))
    assert not (fitted_store / INDEX_FILE).exists()
    assert StoreUnavailableError.http_status == 503 and issubclass(StoreUnavailableError, StoreError)


# ------------------------------------------------------------------ C7: a corrupt index
@pytest.mark.parametrize("offset", [4096, 8192])  # the first bytes of the index's table pages
def test_a_corrupt_index_is_exit_2_naming_it(fitted_store: Path, train_file: Path, offset: int) -> None:
    index = fitted_store / INDEX_FILE
    data = bytearray(index.read_bytes())
    for i in range(offset, offset + 8):
        data[i] ^= 0xFF
    index.write_bytes(bytes(data))
    for args in (("models",), ("models", "show", "m"), ("score", "--model", "m", "--input", str(train_file))):
        one_line_error(adcore_cli(fitted_store, *args), str(index), "corrupt")


def test_a_garbage_index_is_exit_2_naming_it(fitted_store: Path, train_file: Path) -> None:
    index = fitted_store / INDEX_FILE
    index.write_bytes(b"\x00garbage" * 512)
    for args in (("models",), ("score", "--model", "m", "--input", str(train_file))):
        one_line_error(adcore_cli(fitted_store, *args), str(index), "corrupt")


# ------------------------------------------------------------------ C8: a read-only store
def snapshot(store: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(store)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in store.rglob("*")
        if p.is_file()
    }


def test_an_open_store_that_only_reads_writes_nothing(fitted_store: Path) -> None:
    before = snapshot(fitted_store)
    with contextlib.closing(SQLiteStore(str(fitted_store))) as opened:
        record = opened.get("m")
        opened.read_artifact(record)
        assert [r.ref for r in opened.list()] == ["m@1"]
        assert snapshot(fitted_store) == before  # while open: no -wal, -shm or -journal beside the index
    assert snapshot(fitted_store) == before


def test_read_commands_write_nothing(fitted_store: Path, train_file: Path) -> None:
    before = snapshot(fitted_store)
    for args in (
        ("models", "--json"),
        ("models", "show", "m"),
        ("score", "--model", "m", "--input", str(train_file)),
        ("explain", "--model", "m", "--input", str(train_file)),
    ):
        proc = adcore_cli(fitted_store, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert snapshot(fitted_store) == before, args  # same files, bytes and mtimes: no -wal/-shm/-journal


@contextlib.contextmanager
def read_only_bind(source: Path, target: Path) -> Iterator[Path]:
    """``source`` mounted read-only at ``target`` (root and a kernel that allows it), else skip."""
    target.mkdir()
    bind = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.strip()}")
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


@pytest.mark.service  # a real adcore serve: needs the server extra
@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_a_store_on_a_read_only_mount_lists_and_scores(
    fitted_store: Path, train_file: Path, tmp_path
) -> None:
    with read_only_bind(fitted_store, tmp_path / "ro") as ro:
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")  # really read-only, even for root
        listed = adcore_cli(ro, "models", "--json")
        assert listed.returncode == 0, listed.stderr
        assert '"m@1"' in listed.stdout
        scored = adcore_cli(ro, "score", "--model", "m@1", "--input", str(train_file), "--json")
        assert scored.returncode == 0, scored.stderr
        refused = adcore_cli(ro, "fit", "--algo", "core:hbos", "--input", str(train_file), "--model", "m")
        assert "read-only" in one_line_error(refused).lower()
        with running_server(tmp_path / "srv", store=str(ro)) as server, server.client() as http:
            answer = http.post("/v1/models/m/score", json={"data": training_rows(20, 3)})
            assert answer.status_code == 200, answer.text
