"""What adcore-pyod knows about PyOD that PyOD's source does not say.

Kept apart from the generated catalog so the catalog stays a faithful, regenerable
description of the installed PyOD, and every hand-made decision is in one reviewed place.
Read by the generator (exclusions) and at registration (expected check failures, the
conformance kit's test parameters, slowness, notes); imports nothing.
"""

from __future__ import annotations

from typing import Any

#: Detectors left out although they are tabular ``BaseDetector`` subclasses, and why.
#: (Non-tabular, supervised and argument-requiring detectors are excluded automatically;
#: see ``generate.exclusion_reason``.)
EXCLUDED: dict[str, str] = {
    "pyod.models.mad.MAD": "univariate only: raises ValueError on data with more than one feature",
}

#: Constructor arguments PyOD requires that only the data can tell, and the adapters
#: (:mod:`adcore_pyod.adapters`) that pass them at fit time for the classes that need them.
FIT_TIME_ARGS: dict[str, str] = {"n_features": "the number of columns of X, passed at fit"}
ADAPTERS: dict[str, str] = {"pyod.models.deep_svdd.DeepSVDD": "adcore_pyod.adapters:DeepSVDD"}

#: Constructor parameters adcore cannot pass because the Detector wrapper uses the same
#: name for its own argument (``Detector(algorithm, threshold=...)``). PyOD's default applies.
SHADOWED_PARAMS: dict[str, str] = {
    "algorithm": "shadowed by adcore's own 'algorithm' argument (the detector name); PyOD's default applies",
    "threshold": "shadowed by adcore's own 'threshold' argument; PyOD's default applies",
}

#: Conformance checks a detector is known to fail, with the reason (adcore.testing reads
#: ``xfail_checks`` from the registration metadata).
_BATCH = "check_score_single_row"
XFAIL_CHECKS: dict[str, dict[str, str]] = {
    "cd": {_BATCH: "PyOD's CD takes each row's leverage within the scored batch (a single row gives NaN)"},
    "cof": {
        _BATCH: "PyOD's COF chains neighbours within the scored batch: it needs more rows than n_neighbors"
    },
    "copod": {_BATCH: "PyOD's COPOD re-estimates its ECDFs on the training rows plus the scored batch"},
    "ecod": {_BATCH: "PyOD's ECOD re-estimates its ECDFs on the training rows plus the scored batch"},
    "hdbscan": {
        "check_orientation": "GLOSH scores rank scattered far outliers at ROC-AUC ~0.6: they measure density "
        "relative to the nearest cluster, and isolated points form none",
        "check_score_new_data": "as check_orientation: ROC-AUC ~0.6 on far outliers",
    },
    "kpca": {
        "check_orientation": "PyOD's KPCA training scores rank the planted outliers at ROC-AUC ~0.5 "
        "(its scores of new data rank them correctly)"
    },
    "lmdd": {_BATCH: "PyOD's LMDD measures each row's deviation within the scored batch"},
    "rgraph": {
        "check_orientation": "PyOD's RGraph ranks outliers lowest (ROC-AUC < 0.5 here and on ADBench "
        "cardio, WBC, Ionosphere): registered unchanged for parity with PyOD",
        "check_score_new_data": "as check_orientation: PyOD's RGraph scores look inverted",
    },
    "rod": {_BATCH: "PyOD's ROD scales each row's angles within the scored batch"},
    "sod": {
        _BATCH: "PyOD's SOD finds reference sets within the scored batch: it needs more rows than n_neighbors"
    },
    "sos": {
        "check_orientation": "SOS ranks the planted outliers at ROC-AUC ~0.85 with PyOD's default perplexity",
        "check_score_new_data": "PyOD's SOS scores a batch against itself, not against the training data",
        _BATCH: "PyOD's SOS scores a batch against itself (a single row gives NaN)",
    },
}

_UNSEEDED = "PyOD's {} takes no random_state and does not seed torch: two fits differ"
_GAAL_AUC = (
    "PyOD's {} is unseeded and ranks the planted outliers at ROC-AUC {} depending on torch's "
    "global random state: it passes or fails with the order the tests run in"
)
_SEED = "check_seed_determinism"
_CLONE = "check_clone_round_trip"
XFAIL_CHECKS.update(
    {
        "ae1svm": {
            _BATCH: "PyOD's AE1SVM cannot score a single row (ValueError: setting an array element...)",
            _SEED: _UNSEEDED.format("AE1SVM"),
            _CLONE: _UNSEEDED.format("AE1SVM"),
        },
        "alad": {
            "check_orientation": "PyOD's ALAD ranks the planted outliers at ROC-AUC ~0.55 with its defaults",
            "check_score_new_data": "PyOD's ALAD scores with dropout active: the same rows score differently",
            _BATCH: "PyOD's ALAD scores with dropout active: the same rows score differently",
            _SEED: _UNSEEDED.format("ALAD"),
            _CLONE: _UNSEEDED.format("ALAD"),
            "check_pickle_round_trip": "PyOD's ALAD scores with dropout active: no two scorings agree",
        },
        "anogan": {_SEED: _UNSEEDED.format("AnoGAN"), _CLONE: _UNSEEDED.format("AnoGAN")},
        "dif": {_BATCH: "PyOD's DIF standardizes its deep representations over the scored batch"},
        "mo-gaal": {
            "check_orientation": _GAAL_AUC.format("MO_GAAL", "0.77 to 0.94"),
            "check_score_new_data": _GAAL_AUC.format("MO_GAAL", "0.90 to 1.0 on new data"),
            _SEED: _UNSEEDED.format("MO_GAAL"),
            _CLONE: _UNSEEDED.format("MO_GAAL"),
            "check_pickle_round_trip": "PyOD's MO_GAAL builds its networks from classes local to a "
            "function, which pickle cannot serialize (so it cannot be saved with adcore fit --model)",
        },
        "so-gaal": {
            "check_orientation": _GAAL_AUC.format("SO_GAAL", "0.81 to 0.97"),
            "check_score_new_data": _GAAL_AUC.format("SO_GAAL", "0.85 to 1.0 on new data"),
            _SEED: _UNSEEDED.format("SO_GAAL"),
            _CLONE: _UNSEEDED.format("SO_GAAL"),
        },
        "suod": {
            _BATCH: "PyOD's SUOD averages members that include COPOD, whose scores depend on the batch",
            _SEED: "PyOD's SUOD takes no random_state (its members and projections are unseeded)",
            _CLONE: "PyOD's SUOD takes no random_state (its members and projections are unseeded)",
        },
        "so-gaal-new": {
            "check_orientation": "PyOD's new SO_GAAL ranks the planted outliers at ROC-AUC ~0.76 by default",
            "check_score_new_data": "as check_orientation: ROC-AUC ~0.87 on new data",
        },
        "vae": {
            "check_score_new_data": "PyOD's VAE samples its latent code when scoring: the same rows score "
            "differently each time",
            _BATCH: "PyOD's VAE samples its latent code when scoring",
            _SEED: "PyOD's VAE samples its latent code when scoring: new-data scores differ between fits",
            "check_pickle_round_trip": "PyOD's VAE samples its latent code when scoring: no scorings agree",
        },
    }
)

#: Parameters the conformance kit builds a detector with (``test_params``), where PyOD's
#: defaults make each of its ~3 fits per detector take seconds to a minute on the kit's
#: 200 x 4 data. They shorten training or skip work that does not change what a check
#: asserts; every check still runs. The parity tests (tests/test_pyod_parity.py) keep
#: PyOD's defaults. Each set passes the same checks as the defaults (ROC-AUC > 0.9 over
#: several torch seeds where the orientation checks are not expected failures).
TEST_PARAMS: dict[str, dict[str, Any]] = {
    "ae1svm": {"epochs": 5},  # 50 by default
    "alad": {"epochs": 10},  # 200
    "anogan": {"epochs": 5, "epochs_query": 1},  # 500 and 20 latent steps per scored row
    "deep-svdd": {"epochs": 10},  # 100
    "dif": {"n_ensemble": 10},  # 50 random representations
    "lunar": {"n_epochs": 20},  # 200
    # one block instead of one per 10 rows: RGraph rebuilds its graph for every block
    "rgraph": {"blocksize_test_data": 100, "verbose": False},
    # no cost predictor (balanced parallel scheduling): SUOD trains 11 random forests to
    # schedule its members on every fit *and every decision_function call*; scores are the same
    "suod": {"bps_flag": False},
    "vae": {"epoch_num": 5},  # 30
}

#: Detectors whose conformance run takes long (adcore.testing marks them ``slow``).
SLOW: set[str] = {"loci", "rgraph", "suod"}

#: Optional packages whose detectors are slow to train (deep models): all marked slow.
SLOW_NEEDS = frozenset({"torch"})

#: A few words appended to the summary where users must know something before using it.
NOTES: dict[str, str] = {"rgraph": "scores look inverted in PyOD: see the adcore-pyod README"}


def extras(name: str, needs: list[str]) -> dict[str, Any]:
    """Registration metadata for ``pyod:<name>`` beyond what the catalog holds."""
    out: dict[str, Any] = {}
    if name in XFAIL_CHECKS:
        out["xfail_checks"] = dict(XFAIL_CHECKS[name])
    if name in TEST_PARAMS:
        out["test_params"] = dict(TEST_PARAMS[name])
    if name in SLOW or SLOW_NEEDS.intersection(needs):
        out["slow"] = True
    return out
