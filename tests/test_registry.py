"""The model store's guarantees, on every backend: the embedded SQLite store, PostgreSQL + S3, MLflow.

Each test takes ``store_url`` (tests/store_services.py), so the same suite runs on each; the
PostgreSQL + moto S3 cases are marked ``service`` and use real servers on loopback, the
MLflow cases (``service`` too) MLflow's SQLite backend through adcore-mlflow's ``mlflow://``.
Cross-process behaviour (a fit in one process, scoring in another; concurrent fits; a
fit killed with SIGKILL mid-save) runs the real CLI in subprocesses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import adcore
from adcore.errors import IntegrityError, ModelNotFoundError, SchemaMismatchError, StoreError
from adcore.services.registry import ModelStore, open_store
from adcore.stores.artifacts import LocalArtifacts

REPO = Path(__file__).resolve().parents[1]


def make_csv(
    path: Path, n: int = 300, seed: int = 0, columns: tuple[str, ...] = ("a", "b", "c", "d")
) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(columns)))
    X[:5] += 6.0
    lines = [",".join(columns)] + [",".join(f"{v:.6f}" for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    return make_csv(tmp_path / "train.csv")


def cli_env(store_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["ADCORE_STORE"] = store_url
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def adcore_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "adcore.cli.main", *args]


def cli_in_process(capfd: pytest.CaptureFixture[str], store_url: str, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (cheaper than a subprocess where no second process is needed)."""
    from adcore.cli.main import run_cli

    code = run_cli([*args] if args[0] == "run" else [*args, "--store", store_url])
    out, err = capfd.readouterr()
    return code, out, err


def run_cli(store_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        adcore_cmd(*args), capture_output=True, text=True, env=cli_env(store_url, **env), timeout=120
    )


def overwrite_artifact(store_url: str, key: str, data: bytes) -> None:
    """Change an artifact behind the index's back (what tampering or a bad disk does)."""
    store = open_store(store_url)
    try:
        artifacts = store.artifacts  # type: ignore[attr-defined]
        if store_url.startswith("mlflow:"):  # the key is an MLflow artifact URI
            artifacts.put(key, data)
        elif isinstance(artifacts, LocalArtifacts):
            (artifacts.root / key).write_bytes(data)
        else:
            artifacts.client.put_object(Bucket=artifacts.bucket, Key=key, Body=data)
    finally:
        store.close()


def read_artifact(store_url: str, key: str) -> bytes:
    with contextlib.closing(open_store(store_url)) as store:
        return store.artifacts.get(key)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ basics
def test_backend_satisfies_the_protocol(store_url):
    with contextlib.closing(open_store(store_url)) as store:
        assert isinstance(store, ModelStore)
        assert store.list() == []


def test_versions_latest_and_unknown(store_url, train_csv):
    first = adcore.fit(train_csv, algo="core:hbos", name="payments", store=store_url, seed=0)
    second = adcore.fit(train_csv, algo="core:mad", name="payments", store=store_url, seed=0)
    assert (first.ref, second.ref) == ("payments@1", "payments@2")
    assert adcore.load_model("payments", store=store_url).ref == "payments@2"
    assert adcore.load_model("payments@latest", store=store_url).algorithm == "core:mad"
    assert adcore.load_model("payments@1", store=store_url).algorithm == "core:hbos"
    with pytest.raises(ModelNotFoundError, match="versions: 1, 2"):
        adcore.load_model("payments@7", store=store_url)
    with pytest.raises(ModelNotFoundError, match="no model named 'other'"):
        adcore.load_model("other", store=store_url)
    with contextlib.closing(open_store(store_url)) as store:
        record = store.get("payments", 1)
    assert record.feature_names == ["a", "b", "c", "d"] and record.n_samples == 300 and record.n_features == 4
    assert record.dtypes == ["float64"] * 4 and record.sha256 and record.size > 0
    assert record.versions["adcore"] == adcore.__version__ and "plugin:core" in record.versions
    assert set(record.score_quantiles) >= {"0", "0.5", "0.99", "1"}
    assert record.metrics["n_anomalies"] == 30 and record.created_at.endswith("+00:00")


def test_rm_one_version_then_all_and_versions_are_never_reused(store_url, train_csv):
    refs = [adcore.fit(train_csv, name="m", store=store_url, seed=0).ref for _ in range(3)]
    assert refs == ["m@1", "m@2", "m@3"]
    with contextlib.closing(open_store(store_url)) as store:
        removed = store.remove("m", 2)
        assert [r.ref for r in removed] == ["m@2"]
        assert [r.version for r in store.list("m")] == [1, 3]
    # identical training gives identical bytes, which S3 stores once: the survivors still load
    for ref in ("m@1", "m@3"):
        assert adcore.load_model(ref, store=store_url).ref == ref
    with pytest.raises(ModelNotFoundError):
        adcore.load_model("m@2", store=store_url)
    with contextlib.closing(open_store(store_url)) as store:
        gone = store.remove("m")
        assert [r.ref for r in gone] == ["m@1", "m@3"] and store.list() == []
        with pytest.raises(IntegrityError):
            store.artifacts.get(gone[0].artifact)  # type: ignore[attr-defined]
        with pytest.raises(ModelNotFoundError):
            store.remove("m")
    assert adcore.fit(train_csv, name="m", store=store_url).ref == "m@4"


# --------------------------------------------------------------------------- integrity
def test_tampered_artifact_is_refused(store_url, train_csv, tmp_path, capfd):
    record = adcore.fit(train_csv, name="t", store=store_url).record
    data = bytearray(read_artifact(store_url, record.artifact))
    data[len(data) // 2] ^= 0xFF
    overwrite_artifact(store_url, record.artifact, bytes(data))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        adcore.load_model("t@1", store=store_url)
    code, _, err = cli_in_process(
        capfd,
        store_url,
        "score",
        "--model",
        "t",
        "--input",
        str(train_csv),
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert code == 2, err
    assert err.count("\n") == 1 and "checksum mismatch" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()


def test_truncated_artifact_is_refused(store_url, train_csv):
    record = adcore.fit(train_csv, name="t", store=store_url).record
    data = read_artifact(store_url, record.artifact)
    overwrite_artifact(store_url, record.artifact, data[: len(data) // 3])
    with pytest.raises(IntegrityError, match="truncated"):
        adcore.load_model("t", store=store_url)


def test_schema_mismatch_is_refused(store_url, train_csv, tmp_path, capfd):
    adcore.fit(train_csv, name="s", store=store_url)
    model = adcore.load_model("s", store=store_url)
    with pytest.raises(SchemaMismatchError, match="trained on 4 features, the input has 3"):
        model.score(np.zeros((5, 3)))
    renamed = make_csv(tmp_path / "renamed.csv", columns=("a", "b", "c", "e"))
    with pytest.raises(SchemaMismatchError, match="missing 'd'; not in the training data 'e'"):
        model.score(renamed)
    swapped = make_csv(tmp_path / "swapped.csv", columns=("a", "c", "b", "d"))
    code, _, err = cli_in_process(capfd, store_url, "score", "--model", "s@1", "--input", str(swapped))
    assert code == 2 and "another order (position 2: 'c', expected 'b')" in err


# ----------------------------------------------------------------------- across processes
def test_fit_in_one_process_score_in_another_equals_run(store_url, train_csv, tmp_path, capfd):
    fitted = run_cli(
        store_url, "fit", "--algo", "core:hbos", "--input", str(train_csv), "--model", "rt", "--seed", "3"
    )
    assert fitted.returncode == 0, fitted.stderr
    assert fitted.stdout.strip() == "rt@1"
    scored = run_cli(
        store_url,
        "score",
        "--model",
        "rt@1",
        "--input",
        str(train_csv),
        "--output",
        str(tmp_path / "score.csv"),
        "--chunk-size",
        "64",
    )
    assert scored.returncode == 0, scored.stderr
    code, _, err = cli_in_process(  # the reference: 'run' with the same data and seed
        capfd,
        store_url,
        "run",
        "--algo",
        "core:hbos",
        "--input",
        str(train_csv),
        "--seed",
        "3",
        "--output",
        str(tmp_path / "run.csv"),
    )
    assert code == 0, err
    assert (tmp_path / "score.csv").read_bytes() == (tmp_path / "run.csv").read_bytes()


def test_concurrent_fits_get_distinct_consecutive_versions(store_url, train_csv):
    n = 4
    procs = [
        subprocess.Popen(
            adcore_cmd(
                "fit", "--algo", "core:hbos", "--input", str(train_csv), "--model", "race", "--seed", str(i)
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(store_url),
        )
        for i in range(n)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert sorted(out.strip() for out, _ in outs) == [f"race@{v}" for v in range(1, n + 1)]
    with contextlib.closing(open_store(store_url)) as store:
        assert [r.version for r in store.list("race")] == list(range(1, n + 1))
    for v in range(1, n + 1):
        assert adcore.load_model(f"race@{v}", store=store_url).ref == f"race@{v}"


def test_fit_killed_during_save_leaves_a_consistent_registry(store_url, train_csv):
    adcore.fit(train_csv, name="k", store=store_url, seed=0)
    from crash_points import MARKER
    from store_services import crash_command

    command = crash_command(store_url, 120)
    proc = subprocess.Popen(
        [*command, "fit", "--algo", "core:mad", "--input", str(train_csv), "--model", "k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(store_url),
    )
    try:
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while True:  # the marker says the artifact is written and the row inserted, uncommitted
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"fit exited early: {proc.returncode}"
            if MARKER in line:
                break
            assert time.monotonic() < deadline, "the save never reached the test pause"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    with contextlib.closing(open_store(store_url)) as store:
        listed = store.list()
    assert [r.ref for r in listed] == ["k@1"]
    for record in listed:
        assert adcore.load_model(record.ref, store=store_url).algorithm == "core:hbos"
    # the killed transaction also gave back its version: the store keeps working normally
    assert adcore.fit(train_csv, name="k", store=store_url).ref == "k@2"


# --------------------------------------------------------------------- the storage port
class _MemPlugin:
    """A third-party backend: a scheme served by the embedded store in a fixed folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @adcore.hookimpl
    def register_storage(self, register):  # type: ignore[no-untyped-def]
        from adcore.stores.sqlite import SQLiteStore

        register(
            "mem", lambda url: SQLiteStore(str(self.root / url.split("://", 1)[1])), summary="test backend"
        )
        register("broken", "adcore_no_such_module_xyz:open", needs=["adcore-no-such-module-xyz"])


def test_backends_come_from_register_storage(tmp_path, train_csv):
    from adcore.errors import MissingDependencyError
    from adcore.plugins import PluginHost, set_host

    host = PluginHost(autoload=False)
    host.add_plugin(_MemPlugin(tmp_path), "mine")
    set_host(host)
    try:
        model = adcore.fit(train_csv, name="p", store="mem://one")
        assert model.ref == "p@1" and (tmp_path / "one" / "index.sqlite").exists()
        assert adcore.load_model("p", store="mem://one").ref == "p@1"
        with pytest.raises(MissingDependencyError, match="pip install adcore-no-such-module-xyz"):
            open_store("broken://x")
        with pytest.raises(StoreError, match="no model-store backend for 'ftp'"):
            open_store("ftp://x")
    finally:
        set_host(None)


def test_postgres_backend_without_its_extra_says_what_to_install(monkeypatch):
    from adcore.errors import MissingDependencyError

    monkeypatch.delitem(sys.modules, "adcore.stores.postgres", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(MissingDependencyError, match=r"psycopg.*pip install 'adcore\[postgres\]'"):
        open_store("postgresql://u@127.0.0.1:1/db?artifacts=s3://b/p")
