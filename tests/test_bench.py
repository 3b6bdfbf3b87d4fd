"""``adcore bench`` on two tiny labelled datasets: npz and csv."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from adcore.cli.main import run_cli
from adcore.domain.metrics import roc_auc


@pytest.fixture
def datasets(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "ds"
    folder.mkdir()
    X = rng.normal(size=(200, 3))
    y = np.zeros(200, dtype=int)
    X[:10] += 6
    y[:10] = 1
    np.savez(folder / "a_npz.npz", X=X, y=y)
    X2 = rng.normal(size=(150, 2))
    y2 = np.zeros(150, dtype=int)
    X2[-5:] -= 7
    y2[-5:] = 1
    with open(folder / "b_csv.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["u", "v", "label"])
        writer.writerows([[f"{a:.6f}", f"{b:.6f}", lab] for (a, b), lab in zip(X2, y2, strict=True)])
    (folder / "notes.txt").write_text("ignored")
    return folder, (X, y), (X2, y2)


def test_bench_two_datasets_with_ensemble(capfd, tmp_path, datasets):
    folder, (X, y), _ = datasets
    out = tmp_path / "bench.json"
    code = run_cli(["bench", "-a", "hbos,mad", "--ensemble", "-d", str(folder), "-o", str(out), "--json"])
    stdout, err = capfd.readouterr()
    assert code == 0, err
    payload = json.loads(stdout)
    records = json.loads(out.read_text())
    assert [(r["dataset"], r["detector"]) for r in records] == [
        ("a_npz", "core:hbos"),
        ("a_npz", "core:mad"),
        ("a_npz", "ensemble(hbos,mad)"),
        ("b_csv", "core:hbos"),
        ("b_csv", "core:mad"),
        ("b_csv", "ensemble(hbos,mad)"),
    ]
    import adcore

    expected = roc_auc(y, adcore.detect(X, algo="core:mad", seed=0).scores)
    assert records[1]["roc_auc"] == pytest.approx(expected, abs=1e-6)
    assert all(r["error"] is None and r["roc_auc"] > 0.9 for r in records)
    assert all(r["fit_seconds"] is not None and r["peak_memory_mb"] is not None for r in records)
    assert {s["detector"] for s in payload["summary"]} == {"core:hbos", "core:mad", "ensemble(hbos,mad)"}
    assert len(records[2]["extra"]["weights"]) == 2


def test_bench_reports_the_oracle_the_best_single_and_the_default_side_by_side(capfd, tmp_path, datasets):
    folder, *_ = datasets
    out = tmp_path / "bench.json"
    args = ["bench", "-a", "hbos,mad,mahalanobis", "--ensemble", "-d", str(folder), "-o", str(out), "--json"]
    code = run_cli(args)
    stdout, err = capfd.readouterr()
    assert code == 0, err
    reference = json.loads(stdout)["references"]
    records = json.loads(out.read_text())
    table = {(r["dataset"], r["detector"]): r["roc_auc"] for r in records}
    singles = ["core:hbos", "core:mad", "core:mahalanobis"]
    means = {d: np.mean([table[(ds, d)] for ds in ("a_npz", "b_csv")]) for d in singles}
    assert reference["datasets"] == 2
    assert reference["best_single"] == max(singles, key=lambda d: (means[d], d))
    assert reference["best_single_mean_roc_auc"] == pytest.approx(max(means.values()), abs=1e-4)
    for ds, pick in reference["oracle_picks"].items():
        assert table[(ds, pick)] == max(table[(ds, d)] for d in singles)
    oracle = np.mean([max(table[(ds, d)] for d in singles) for ds in ("a_npz", "b_csv")])
    assert reference["oracle_mean_roc_auc"] == pytest.approx(oracle, abs=1e-4)
    assert reference["oracle_mean_roc_auc"] >= reference["best_single_mean_roc_auc"]
    (name,) = reference["combined"]
    ensemble = np.mean([table[(ds, name)] for ds in ("a_npz", "b_csv")])
    row = reference["combined"][name]
    assert row["vs_best_single"] == pytest.approx(ensemble - max(means.values()), abs=2e-4)
    assert row["vs_oracle"] == pytest.approx(ensemble - oracle, abs=2e-4)
    assert capfd.readouterr() is not None
    code = run_cli(["bench", "-a", "hbos,mad,mahalanobis", "--ensemble", "-d", str(folder)])
    stdout, err = capfd.readouterr()
    assert code == 0, err
    assert "references" in stdout and "oracle (hindsight)" in stdout
    assert f"best single: {reference['best_single']}" in stdout
    assert str(reference["oracle_mean_roc_auc"]) in stdout


def test_bench_with_one_detector_has_no_references(capfd, datasets):
    folder, *_ = datasets
    assert run_cli(["bench", "-a", "hbos", "-d", str(folder), "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["references"] is None


def test_bench_csv_output_plot_and_tables(capfd, tmp_path, datasets):
    pytest.importorskip("matplotlib")
    folder, *_ = datasets
    out, png = tmp_path / "bench.csv", tmp_path / "bench.png"
    code = run_cli(["bench", "-a", "mahalanobis,mad", "-d", str(folder), "-o", str(out), "--plot", str(png)])
    stdout, err = capfd.readouterr()
    assert code == 0, err
    assert "ROC-AUC" in stdout and "summary" in stdout
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and rows[0]["detector"] == "core:mahalanobis"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-a", "nope"], "unknown algorithm"),
        (["-a", "hbos", "--ensemble"], "at least two"),
        (["-a", "hbos", "-o", "x.txt"], ".json or .csv"),
        (["-a", "hbos", "--plot", "x.jpg"], "PNG"),
    ],
)
def test_bench_bad_usage(capfd, datasets, args, needle):
    folder, *_ = datasets
    code = run_cli(["bench", *args, "-d", str(folder)])
    _, err = capfd.readouterr()
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_bench_missing_folder(capfd, tmp_path):
    code = run_cli(["bench", "-a", "hbos", "-d", str(tmp_path / "none")])
    _, err = capfd.readouterr()
    assert code == 2 and "no such file or folder" in err
