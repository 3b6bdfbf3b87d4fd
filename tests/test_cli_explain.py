"""``adcore explain`` from a stored model and from a fresh fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adcore.cli.main import run_cli


@pytest.fixture
def planted_csv(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    X[:6, 2] += 12  # the anomalies differ in feature "c" only
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,d\n" + "\n".join(",".join(f"{v:.5f}" for v in row) for row in X) + "\n")
    return path


def test_explain_stored_model_singles_out_planted_feature(capfd, tmp_path, planted_csv, monkeypatch):
    monkeypatch.setenv("ADCORE_HOME", str(tmp_path / "home"))
    assert run_cli(["fit", "-a", "core:mad", "-i", str(planted_csv), "--model", "m", "-c", "0.02"]) == 0
    capfd.readouterr()
    code = run_cli(["explain", "--model", "m@1", "-i", str(planted_csv), "--top", "1", "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    payload = json.loads(out)
    assert payload["model"] == "m@1" and payload["n_anomalies"] == 6
    assert sorted(a["row"] for a in payload["anomalies"]) == [0, 1, 2, 3, 4, 5]
    assert all(list(a["explanation"]) == ["c"] for a in payload["anomalies"])
    code = run_cli(["explain", "--model", "m", "-i", str(planted_csv)])
    out, _ = capfd.readouterr()
    assert code == 0 and "c +" in out


def test_explain_with_algo_and_errors(capfd, planted_csv):
    code = run_cli(
        ["explain", "-a", "core:mahalanobis", "-i", str(planted_csv), "--json", "--limit", "3", "-c", "0.02"]
    )
    out, err = capfd.readouterr()
    assert code == 0, err
    items = json.loads(out)["anomalies"]
    assert len(items) == 3 and all(next(iter(a["explanation"])) == "c" for a in items)
    for args, needle in ((["-a", "hbos", "-m", "x"], "exactly one"), (["--top", "0", "-a", "hbos"], "--top")):
        code = run_cli(["explain", "-i", str(planted_csv), *args])
        _, err = capfd.readouterr()
        assert code == 2 and needle in err
