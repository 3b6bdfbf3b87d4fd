"""Ensembles are detectors: shorthand, parallel fits, voting, stacking, pickling, explanations."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest

import adcore
from adcore.cli.main import run_cli
from adcore.errors import ParameterError

MEMBERS = "core:hbos,core:mad,core:mahalanobis"


@pytest.fixture
def planted():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(600, 4))
    X[:12] += 5.0
    return X


def test_shorthand_builds_an_ensemble(planted):
    det = adcore.create_detector(MEMBERS, contamination=0.02).fit(planted)
    assert det.algorithm_name == "core:ensemble"
    assert det.estimator_.member_names_ == ["core:hbos", "core:mad", "core:mahalanobis"]
    assert set(np.argsort(-det.decision_scores_)[:12]) == set(range(12))
    np.testing.assert_allclose(det.decision_function(planted), det.decision_scores_)
    weights = det.estimator_.report()["weights"]
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0)


@pytest.mark.parametrize("combine", ["average", "max", "median", "aom", "moa", "consensus"])
def test_each_combination_scores_new_data_like_training(planted, combine):
    det = adcore.create_detector(MEMBERS, combine=combine, normalize="zscore", random_state=0).fit(planted)
    np.testing.assert_allclose(det.decision_function(planted), det.decision_scores_)
    assert set(np.argsort(-det.decision_scores_)[:12]) == set(range(12))


def test_parallel_fit_gives_the_same_scores(planted):
    one = adcore.create_detector(MEMBERS, jobs=1).fit(planted)
    two = adcore.create_detector(MEMBERS, jobs=2).fit(planted)
    np.testing.assert_array_equal(one.decision_scores_, two.decision_scores_)


def test_vote_is_majority_of_member_labels(planted):
    det = adcore.create_detector(MEMBERS, combine="vote", threshold="fixed:0.5", contamination=0.02).fit(
        planted
    )
    majority = det.estimator_.majority(planted)
    np.testing.assert_array_equal(det.labels_, majority)
    np.testing.assert_array_equal(det.predict(planted), majority)


def test_stacking_learns_from_a_few_labels(planted):
    pytest.importorskip("sklearn")  # the meta-learner; absent only in tox's core-alone env
    y = np.full(600, -1.0)
    y[[0, 1, 2]] = 1
    y[100:130] = 0
    det = adcore.create_detector(MEMBERS, combine="stack").fit(planted, y)
    assert set(np.argsort(-det.decision_scores_)[:12]) == set(range(12))
    with pytest.raises(ParameterError, match="needs labels"):
        adcore.create_detector(MEMBERS, combine="stack").fit(planted)


def test_ensemble_pickles_and_explains(planted):
    det = adcore.create_detector(MEMBERS).fit(planted)
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.decision_function(planted[:50]), det.decision_function(planted[:50]))
    from adcore.services.explain import explain

    X = planted[100:105].copy()  # normal rows, made anomalous through one feature
    X[:, 2] += 30
    assert [next(iter(e)) for e in explain(det, X, top=1)] == ["x2"] * 5


def test_member_params_and_bad_options(planted):
    det = adcore.create_detector(MEMBERS, member_params={"core:hbos": {"n_bins": 7}}).fit(planted)
    assert det.estimator_.members_[0].estimator_.n_bins == 7
    with pytest.raises(ParameterError, match="not members"):
        adcore.create_detector(MEMBERS, member_params={"core:nope": {}}).fit(planted)
    with pytest.raises(ParameterError, match="must differ"):
        adcore.create_detector("core:hbos,hbos").fit(planted)
    with pytest.raises(ParameterError, match="combine"):
        adcore.create_detector(MEMBERS, combine="best")


def test_cli_ensemble_flags(capfd, tmp_path, planted):
    pytest.importorskip("sklearn")  # --labels means stacking, whose meta-learner is scikit-learn's
    path = tmp_path / "d.csv"
    labels = np.full(600, "", dtype=object)
    labels[:3] = "1"
    labels[200:240] = "0"
    rows = ["a,b,c,d,y"] + [
        ",".join([*(f"{v:.5f}" for v in r), str(lab)]) for r, lab in zip(planted, labels, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    code = run_cli(
        ["run", "-a", "hbos,mad", "-i", str(path), "--columns", "a,b,c,d", "--json", "--combine", "max"]
    )
    out, err = capfd.readouterr()
    assert code == 0, err
    assert json.loads(out)["metadata"]["ensemble"]["combine"] == "max"
    code = run_cli(
        ["run", "-a", "hbos,mad", "-i", str(path), "--labels", "y", "--json", "--param", "core:hbos.n_bins=5"]
    )
    out, err = capfd.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["metadata"]["ensemble"]["combine"] == "stack" and summary["metadata"]["n_features"] == 4
    code = run_cli(["run", "-a", "hbos", "-i", str(path), "--columns", "a,b", "--combine", "max"])
    _, err = capfd.readouterr()
    assert code == 2 and "applies to ensembles only" in err
    code = run_cli(["run", "-a", "hbos,mad", "-i", str(path), "--columns", "a,b", "--combine", "stack"])
    _, err = capfd.readouterr()
    assert code == 2 and "--labels" in err


TIMED_PLUGIN = '''
import os, time
import numpy as np
import adcore

def _timed(name, seconds):
    class Timed:
        """Sleeps (releasing the GIL, as native fits do) and logs when its fit ran."""
        def fit(self, X, y=None):
            start = time.time()
            time.sleep(seconds)
            with open(os.environ["FIT_LOG"], "a") as log:
                log.write(f"{name} {start} {time.time()}\\n")
            self.center_ = X.mean(axis=0)
            return self
        def decision_function(self, X):
            return np.abs(X - self.center_).sum(axis=1)
    return Timed

@adcore.hookimpl
def register_detectors(register):
    register("quick1", _timed("quick1", 0.2), tags=["fast"])
    register("quick2", _timed("quick2", 0.2), tags=["fast"])
    register("quick3", _timed("quick3", 0.2), tags=["fast"])
    register("slow", _timed("slow", 0.6), tags=["proximity"])
    register("deep1", _timed("deep1", 0.3), tags=["deep"])
    register("deep2", _timed("deep2", 0.3), tags=["deep"])
'''


def _fit_log(path):
    rows = [line.split() for line in path.read_text().splitlines()]
    return {name: (float(start), float(end)) for name, start, end in rows}


def _fit_members(site, csv_file, tmp_path, algo: str, *, jobs: int) -> dict[str, tuple[float, float]]:
    """Run ``adcore run --algo ALGO --jobs N`` with the timed plugin; each member's fit span."""
    out = tmp_path / "s.csv"
    proc = site.run(
        "run", "--algo", algo, "--jobs", str(jobs), "--input", str(csv_file), "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    return _fit_log(tmp_path / "fits.log")


@pytest.fixture
def timed_site(plugin_site, tmp_path):
    plugin_site.add("adcore-timed", {"timed": "timed_plugin"}, {"timed_plugin": TIMED_PLUGIN})
    plugin_site.env["FIT_LOG"] = str(tmp_path / "fits.log")
    return plugin_site


def test_members_fit_at_once_and_slow_ones_start_first(timed_site, csv_file, tmp_path):
    fits = _fit_members(timed_site, csv_file, tmp_path, "quick1,quick2,quick3,slow", jobs=2)
    first = min(start for start, _ in fits.values())
    # The slow member (tagged proximity) starts at once although listed last ...
    assert fits["slow"][0] - first < 0.15
    # ... and the three quick ones run beside it: all done within the slow one's span,
    # so the fits take about 0.6 s, not the 1.2 s of their sum.
    span = max(end for _, end in fits.values()) - first
    assert span < 1.0, fits


def test_one_job_fits_members_in_turn(timed_site, csv_file, tmp_path):
    fits = _fit_members(timed_site, csv_file, tmp_path, "quick1,quick2,slow", jobs=1)
    spans = sorted(fits.values())
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
    assert [name for name, _ in sorted(fits.items(), key=lambda kv: kv[1])] == ["quick1", "quick2", "slow"]


def test_deep_members_never_fit_at_the_same_time(timed_site, csv_file, tmp_path):
    """They seed torch's process-global RNG: concurrent fits would not be reproducible."""
    fits = _fit_members(timed_site, csv_file, tmp_path, "deep1,deep2,quick1", jobs=3)
    (_, a_end), (b_start, _) = sorted([fits["deep1"], fits["deep2"]])
    assert b_start >= a_end
    assert fits["quick1"][0] < a_end  # the quick member did not wait for them


def test_worker_processes_give_the_same_scores(planted):
    threads = adcore.create_detector(MEMBERS, jobs=2).fit(planted)
    processes = adcore.create_detector(MEMBERS, jobs=2, backend="processes").fit(planted)
    np.testing.assert_array_equal(threads.decision_scores_, processes.decision_scores_)
    np.testing.assert_array_equal(
        threads.decision_function(planted[:50]), processes.decision_function(planted[:50])
    )
