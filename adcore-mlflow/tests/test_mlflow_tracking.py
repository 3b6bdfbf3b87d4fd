"""The mlflow monitor: model.saved, bench.completed and stream events as MLflow runs."""

from __future__ import annotations

import os
import subprocess
import sys

import adcore
import mlflow
from adcore.domain.events import DetectionCompleted, DriftDetected, ModelSaved
from adcore.plugins import get_host

from adcore_mlflow.tracking import MlflowMonitor


def runs(experiment: str = "adcore") -> list:
    exp = mlflow.MlflowClient().get_experiment_by_name(experiment)
    return mlflow.MlflowClient().search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_the_monitor_is_registered_lazily():
    registration = get_host().resolve("monitor", "mlflow")
    assert registration.plugin == "mlflow"


def test_model_saved_is_one_run_with_params_metrics_and_tags(tracking_uri, train_csv):
    model = adcore.fit(train_csv, algo="core:hbos", seed=0, name="pay", store=str(train_csv.parent / "s"))
    event = ModelSaved.from_record(model.record)
    payload = {
        **event.to_dict(),
        "params": {"n_bins": 10, "contamination": 0.1},
        "metrics": {"n_anomalies": 30, "fit_seconds": 0.01, "score_quantiles": {"0.5": 1.5}, "roc_auc": 0.9},
        "store": "/srv/models",
    }
    monitor = get_host().resolve("monitor", "mlflow").load()()
    monitor.record(payload)
    monitor.record(event)  # the event object as the core publishes it today
    found = runs()
    assert len(found) == 2
    run = found[0]
    assert run.info.run_name == "pay@1" and run.info.status == "FINISHED"
    assert run.data.params["algorithm"] == "core:hbos" and run.data.params["param.n_bins"] == "10"
    assert run.data.metrics["n_anomalies"] == 30 and run.data.metrics["score_quantiles.0.5"] == 1.5
    assert run.data.metrics["roc_auc"] == 0.9 and run.data.metrics["threshold"] == model.threshold
    assert (
        run.data.tags["adcore.sha256"] == model.record.sha256
        and run.data.tags["adcore.store"] == "/srv/models"
    )


def test_bench_is_a_parent_run_with_one_nested_run_per_detector_and_dataset(tracking_uri, tmp_path):
    table = tmp_path / "bench.md"
    table.write_text("| dataset | algorithm |\n")
    records = [
        {"dataset": d, "algorithm": a, "roc_auc": 0.5 + i / 10, "average_precision": 0.2, "fit_seconds": 0.1}
        for i, (d, a) in enumerate(
            [("cardio", "core:hbos"), ("cardio", "core:mad"), ("thyroid", "core:hbos")]
        )
    ]
    summary = [{"detector": "core:hbos", "mean_roc_auc": 0.65}, {"detector": "core:mad", "mean_roc_auc": 0.6}]
    monitor = MlflowMonitor()
    monitor.record(
        {"type": "bench.completed", "records": records, "summary": summary, "artifacts": [str(table)]}
    )
    found = runs()
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.run_name for c in children} == {
        "core:hbos on cardio",
        "core:mad on cardio",
        "core:hbos on thyroid",
    }
    child = next(c for c in children if c.info.run_name == "core:mad on cardio")
    assert child.data.metrics["roc_auc"] == 0.6 and child.data.params["dataset"] == "cardio"
    assert parent.data.metrics["core:hbos.mean_roc_auc"] == 0.65
    listed = [a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)]
    assert listed == ["bench.md"]


def test_stream_events_are_steps_of_one_run_per_stream(tracking_uri):
    monitor = MlflowMonitor()
    for batch in range(3):
        monitor.record(
            DetectionCompleted(
                stream="payments",
                records=100,
                scored=100,
                warmup=0,
                anomalies=batch,
                malformed=0,
                first_offset=batch * 100,
                last_offset=batch * 100 + 99,
                model="pay@1",
                threshold=1.0,
                duration_ms=5.0,
            )
        )
    monitor.record(
        DriftDetected(
            stream="payments",
            detector="ks",
            on="scores",
            offset=250,
            statistic=0.4,
            threshold=0.2,
            p_value=0.01,
        )
    )
    monitor.close()
    found = runs()
    assert len(found) == 1 and found[0].info.status == "FINISHED"
    history = mlflow.MlflowClient().get_metric_history(found[0].info.run_id, "anomalies")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert found[0].data.metrics["drift.ks.statistic"] == 0.4


def test_fit_and_bench_with_the_mlflow_flag(tracking_uri, train_csv, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    labelled = tmp_path / "bench"
    labelled.mkdir()
    lines = train_csv.read_text().splitlines()
    rows = [f"{line},{'label' if i == 0 else int(i <= 5)}" for i, line in enumerate(lines)]
    (labelled / "toy.csv").write_text("\n".join(rows) + "\n")
    commands = [
        [
            "fit",
            "--algo",
            "core:hbos",
            "--input",
            str(train_csv),
            "--model",
            "pay",
            "--seed",
            "0",
            "--store",
            str(tmp_path / "models"),
            "--mlflow",
        ],
        [
            "bench",
            "--algo",
            "core:hbos,core:mad",
            "--datasets",
            str(labelled),
            "--mlflow",
            "--output",
            str(tmp_path / "bench.json"),
        ],
    ]
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "adcore.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
    names = sorted(r.info.run_name for r in runs())
    assert names == ["bench", "core:hbos on toy", "core:mad on toy", "pay@1"]
    fit = next(r for r in runs() if r.info.run_name == "pay@1")
    assert fit.data.metrics["n_anomalies"] == 30 and fit.data.params["algorithm"] == "core:hbos"
