"""``--mlflow`` on fit and bench: the command's events reach the tracker the user asked for.

The tracker here is a plugin's monitor registered as ``mlflow`` that writes what it receives
to a file, so the test checks the core's side of the contract (which events, which fields,
what a failing tracker does to the exit code). adcore-mlflow's own tests run the real MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TRACKER = """
import json, os
import adcore

class FileTracker:
    def __init__(self, **options):
        self.path = os.environ["TRACKED"]
    def record(self, event):
        if os.environ.get("TRACKER_DOWN"):
            raise ConnectionError("tracking server at http://127.0.0.1:1 refused the connection")
        with open(self.path, "a") as f:
            f.write(json.dumps(event.to_dict()) + "\\n")
    def close(self):
        with open(self.path + ".closed", "w") as f:
            f.write("1")

@adcore.hookimpl
def register_monitors(register):
    register("mlflow", FileTracker, summary="events to a file, under the tracker's name")
"""


def _site(plugin_site, tmp_path: Path) -> Path:
    plugin_site.add("trk-plugin", {"trk": "trk_mod"}, {"trk_mod": TRACKER})
    tracked = tmp_path / "tracked.jsonl"
    plugin_site.env.update(TRACKED=str(tracked), ADCORE_PLUGINS="trk")
    return tracked


def test_fit_with_mlflow_hands_the_saved_model_with_params_and_metrics(plugin_site, csv_file, tmp_path):
    tracked = _site(plugin_site, tmp_path)
    store = tmp_path / "models"
    proc = plugin_site.run(
        "fit", "--algo", "core:hbos", "--input", str(csv_file), "--model", "m", "--store", str(store),
        "--seed", "4", "--mlflow",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (event,) = [json.loads(line) for line in tracked.read_text().splitlines()]
    assert event["type"] == "model.saved" and event["model"] == "m@1" and event["seed"] == 4
    assert event["params"]["contamination"] == 0.1 and event["params"]["threshold_method"] == "contamination"
    assert event["metrics"]["n_anomalies"] == 20 and "score_q0.5" in event["metrics"]
    assert event["metrics"]["fit_seconds"] >= 0 and event["store"] == str(store)
    assert Path(str(tracked) + ".closed").exists()


def test_fit_without_the_flag_tracks_nothing(plugin_site, csv_file, tmp_path):
    tracked = _site(plugin_site, tmp_path)
    proc = plugin_site.run(
        "fit", "--algo", "core:hbos", "--input", str(csv_file), "--model", "m", "--store", str(tmp_path / "s")
    )
    assert proc.returncode == 0, proc.stderr
    assert not tracked.exists()


def test_a_tracker_that_fails_is_exit_2_and_says_the_model_was_stored(plugin_site, csv_file, tmp_path):
    _site(plugin_site, tmp_path)
    store = str(tmp_path / "s")
    proc = plugin_site.run(
        "fit", "--algo", "core:hbos", "--input", str(csv_file), "--model", "m", "--store", store, "--mlflow",
        env={"TRACKER_DOWN": "1"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "stored m@1, but mlflow tracking failed: ConnectionError: tracking server" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert plugin_site.run("models", "--store", store).returncode == 0


def test_no_tracker_installed_names_the_distribution(plugin_site, csv_file, tmp_path):
    proc = plugin_site.run(
        "fit", "--algo", "core:hbos", "--input", str(csv_file), "--model", "m",
        "--store", str(tmp_path / "s"), "--mlflow", env={"ADCORE_PLUGINS": "none-such"},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown monitor 'mlflow'" in proc.stderr and "adcore-mlflow" in proc.stderr


def test_bench_with_mlflow_hands_every_record_and_the_files(plugin_site, tmp_path):
    tracked = _site(plugin_site, tmp_path)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    y = np.zeros(120)
    X[:6] += 6
    y[:6] = 1
    np.savez(tmp_path / "toy.npz", X=X, y=y)
    table = tmp_path / "bench.json"
    proc = plugin_site.run(
        "bench", "--algo", "core:hbos,core:mad", "--datasets", str(tmp_path / "toy.npz"),
        "--output", str(table), "--mlflow",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (event,) = [json.loads(line) for line in tracked.read_text().splitlines()]
    assert event["type"] == "bench.completed" and event["seed"] == 0
    assert sorted(r["algorithm"] for r in event["records"]) == ["core:hbos", "core:mad"]
    assert all(0.5 < r["roc_auc"] <= 1 for r in event["records"])
    assert event["artifacts"] == [str(table.resolve())]
