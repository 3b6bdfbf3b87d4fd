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

#: PyOD's deep detectors that take no ``random_state`` and draw from torch's (and numpy's)
#: global random state: two fits differed, and ``--seed`` could not repeat a run. Their
#: adapter (:class:`adcore_pyod.adapters.GlobalSeed`) adds ``random_state`` and seeds the
#: global state from it before the fit, as PyOD's seeded deep detectors do themselves.
GLOBAL_SEED_ADAPTERS: dict[str, str] = {
    f"pyod.models.{module}.{name}": f"adcore_pyod.adapters:{name}"
    for module, name in [
        ("ae1svm", "AE1SVM"),
        ("alad", "ALAD"),
        ("anogan", "AnoGAN"),
        ("mo_gaal", "MO_GAAL"),
        ("so_gaal", "SO_GAAL"),
    ]
}
ADAPTERS.update(GLOBAL_SEED_ADAPTERS)
#: PyOD's deep detectors that train on full batches only and crash on fewer rows than a
#: batch: their adapter (:class:`adcore_pyod.adapters.FullBatches`) refuses such data first.
ADAPTERS.update(
    {
        "pyod.models.auto_encoder.AutoEncoder": "adcore_pyod.adapters:AutoEncoder",
        "pyod.models.vae.VAE": "adcore_pyod.adapters:VAE",
    }
)
#: The parameter those adapters add (numpy takes seeds below 2**32).
ADAPTER_RANDOM_STATE: dict[str, Any] = {
    "name": "random_state",
    "type": "int",
    "ge": 0,
    "le": 2**32 - 1,
    "default": None,
    "nullable": True,
    "description": "Seed of torch's, numpy's and Python's global random state, set before the fit "
    "(PyOD's class takes none: adcore's adapter seeds it). CLI --seed.",
}

#: Constructor parameters adcore cannot pass because the Detector wrapper uses the same
#: name for its own argument (``Detector(algorithm, threshold=...)``). PyOD's default applies.
SHADOWED_PARAMS: dict[str, str] = {
    "algorithm": "shadowed by adcore's own 'algorithm' argument (the detector name); PyOD's default applies",
    "threshold": "shadowed by adcore's own 'threshold' argument; PyOD's default applies",
}

#: Ranges and choices adcore checks before the fit (see adcore.domain.params: ``ge``/``gt``/``le``/
#: ``lt``, ``choices``, ``bounds_by_type``), so a value out of range is one line naming the
#: detector and the parameter, and ``adcore algos show`` prints the range. Each one is what
#: PyOD itself, or the scikit-learn / torch class it hands the value to, refuses (its own
#: ``check_parameter``, the estimator's ``_parameter_constraints``, torch's optimizer and
#: ``Dropout`` checks): a bound that refused a value PyOD accepts would be a bug, and
#: tests/test_pyod_param_errors.py fits PyOD's class with the value just outside each bound
#: to prove PyOD refuses it too (raises, or scores NaN). Where PyOD accepts a
#: value that looks wrong, no bound: ``epochs=0`` trains nothing in ALAD, AnoGAN,
#: AutoEncoder, DeepSVDD, VAE and the new SO_GAAL (nor ``stop_epochs=0`` in MO_GAAL and
#: SO_GAAL), ``latent_dim=0``, a negative ``dropout_rate`` in AutoEncoder and VAE (no
#: dropout), ``batch_size=0`` in ALAD, ``k=0`` in LOCI and MO_GAAL, ``perplexity`` below 1
#: in SOS, ``combination`` in FeatureBagging (anything but 'average' takes the maximum): all
#: are left to PyOD. The one exception is in :data:`IGNORED_BY_PYOD`: a parameter PyOD keeps
#: but never reads, whose documented choices adcore checks so a typo is not silently accepted.
#:
#: By parameter name, for every detector that has the parameter:
_COUNT = {"ge": 1}
_RATE = {"ge": 0}  # torch's optimizers refuse a negative learning rate or weight decay
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "contamination": {"gt": 0, "le": 0.5},  # PyOD's BaseDetector
    "n_neighbors": _COUNT,  # scikit-learn's NearestNeighbors / PyOD's check_parameter
    "n_neighbours": _COUNT,
    "leaf_size": _COUNT,
    "p": {"gt": 0},  # Minkowski power: scikit-learn's (0, inf]
    "n_estimators": _COUNT,
    "n_ensemble": _COUNT,
    "n_random_cuts": _COUNT,
    "batch_size": _COUNT,  # torch's DataLoader
    "dropout_rate": {"ge": 0, "le": 1},  # torch's Dropout
    "learning_rate": _RATE,
    "lr": _RATE,
    "lr_d": _RATE,
    "lr_g": _RATE,
    "learning_rate_disc": _RATE,
    "learning_rate_gen": _RATE,
    "learning_rate_query": _RATE,
    "weight_decay": _RATE,
}

#: Parameters PyOD accepts but ignores, by detector, with why their documented choices are
#: still checked: PyOD takes any value for them, so tests/test_pyod_param_errors.py must not
#: expect PyOD to refuse a value outside the choices.
IGNORED_BY_PYOD: dict[str, dict[str, str]] = {
    "iforest": {
        "behaviour": "kept for scikit-learn < 0.22 and never read; PyOD documents 'old' or 'new' only, so "
        "anything else is a typo adcore refuses instead of accepting silently",
    },
}

#: By detector: its own ranges, and overrides of the table above (``None``: left to PyOD).
_OPEN_UNIT = {"gt": 0, "lt": 1}  # PyOD's check_parameter(x, 0, 1): both ends excluded
_FRACTION = {"gt": 0, "le": 1}
_AUTO_COUNT_OR_FRACTION = {
    "choices": ["auto"],
    "bounds_by_type": {"int": {"ge": 1}, "float": _FRACTION},
}
DETECTOR_CONSTRAINTS: dict[str, dict[str, dict[str, Any] | None]] = {
    "abod": {"method": {"choices": ["fast", "default"]}},
    "ae1svm": {"epochs": _COUNT},  # 0 epochs: "Training failed, no valid model state found"
    "alad": {"batch_size": None, "dropout_rate": {"ge": 0, "lt": 1}},
    "anogan": {"dropout_rate": {"ge": 0, "lt": 1}, "epochs_query": _COUNT},
    "auto-encoder": {"dropout_rate": {"le": 1}},
    "cblof": {"alpha": _OPEN_UNIT, "beta": {"gt": 1}},
    # PyOD's check_parameter(n_neighbors, low=1) excludes 1
    "cof": {"n_neighbors": {"ge": 2}, "method": {"choices": ["fast", "memory"]}},
    "deep-svdd": {"dropout_rate": {"ge": 0, "lt": 1}},
    # with one dimension DIF's network has no hidden layer: IndexError in PyOD
    "dif": {"max_samples": _COUNT, "representation_dim": {"ge": 2}},
    "gmm": {
        "n_components": _COUNT,
        "n_init": _COUNT,
        "max_iter": {"ge": 0},
        "tol": {"ge": 0},
        "reg_covar": {"ge": 0},
    },
    "hbos": {
        "alpha": _OPEN_UNIT,
        "tol": _OPEN_UNIT,
        # check_parameter(n_bins, low=2) excludes 2
        "n_bins": {"choices": ["auto"], "bounds_by_type": {"int": {"ge": 3}}},
    },
    "hdbscan": {"min_cluster_size": {"ge": 2}, "min_samples": _COUNT, "alpha": {"gt": 0}},
    # scikit-learn's IsolationForest; an int max_features is not bounded there
    "iforest": {
        "behaviour": {"choices": ["old", "new"]},  # see IGNORED_BY_PYOD
        "max_samples": _AUTO_COUNT_OR_FRACTION,
        "max_features": {"bounds_by_type": {"float": _FRACTION}},
    },
    # a single sample per hypersphere has no radius: non-finite scores
    "inne": {
        "max_samples": {**_AUTO_COUNT_OR_FRACTION, "bounds_by_type": {"int": {"ge": 2}, "float": _FRACTION}}
    },
    "kde": {"bandwidth": {"choices": ["scott", "silverman"], "bounds_by_type": {"float": {"gt": 0}}}},
    "knn": {"method": {"choices": ["largest", "mean", "median"]}},
    "kpca": {
        "kernel": {"choices": ["linear", "poly", "rbf", "sigmoid", "cosine", "precomputed"]},
        "degree": {"ge": 0},
        "gamma": {"ge": 0},
        "n_components": _COUNT,
        "n_selected_components": _COUNT,
        "max_iter": _COUNT,
    },
    "lmdd": {"n_iter": {"ge": 2}, "dis_measure": {"choices": ["aad", "var", "iqr"]}},
    "loda": {"n_bins": {"choices": ["auto"], "bounds_by_type": {"int": {"ge": 1}}}},
    # 0 epochs: UnboundLocalError in PyOD; val_size goes to train_test_split
    "lunar": {"n_epochs": _COUNT, "val_size": _OPEN_UNIT},
    "mcd": {"support_fraction": _FRACTION},
    "ocsvm": {
        "nu": _FRACTION,
        "kernel": {"choices": ["linear", "poly", "rbf", "sigmoid", "precomputed"]},
        "gamma": {"choices": ["scale", "auto"], "bounds_by_type": {"float": {"ge": 0}}},
        "degree": {"ge": 0},
        "tol": {"gt": 0},
        "cache_size": {"gt": 0},
        "max_iter": {"ge": -1},
    },
    "pca": {"n_selected_components": _COUNT, "tol": {"ge": 0}},
    "sod": {"n_neighbors": {"ge": 2}, "ref_set": {"ge": 2}, "alpha": _OPEN_UNIT},
    "vae": {"dropout_rate": {"le": 1}},
}


def constraints(name: str, params: list[str]) -> dict[str, dict[str, Any]]:
    """The constraints of ``pyod:<name>``'s parameters ``params`` (what the generator writes)."""
    own = DETECTOR_CONSTRAINTS.get(name, {})
    out = {}
    for param in params:
        found = own[param] if param in own else CONSTRAINTS.get(param)
        if found is not None:
            out[param] = dict(found)
    return out


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

# AE1SVM, ALAD, AnoGAN, MO_GAAL and SO_GAAL are seeded by their adapter (GLOBAL_SEED_ADAPTERS):
# the kit's fits use random_state=0, so each outcome below is the same in every test order.
_GAAL_AUC = (
    "PyOD's {} ranks the planted outliers at ROC-AUC {} with random_state=0 (0.77 to 0.97 over "
    "seeds 0-7: GAN training is noisy); its scores of new data rank them at 0.99"
)
_SEED = "check_seed_determinism"
_CLONE = "check_clone_round_trip"
XFAIL_CHECKS.update(
    {
        "ae1svm": {
            _BATCH: "PyOD's AE1SVM cannot score a single row (ValueError: setting an array element...)",
        },
        "alad": {
            "check_orientation": "PyOD's ALAD ranks the planted outliers at ROC-AUC ~0.55 with its defaults",
            "check_score_new_data": "PyOD's ALAD scores with dropout active: the same rows score differently",
            _BATCH: "PyOD's ALAD scores with dropout active: the same rows score differently",
            _SEED: "PyOD's ALAD scores with dropout active: two seeded fits train alike, but their "
            "scores of new data differ",
            "check_pickle_round_trip": "PyOD's ALAD scores with dropout active: no two scorings agree",
        },
        "dif": {_BATCH: "PyOD's DIF standardizes its deep representations over the scored batch"},
        "mo-gaal": {
            "check_orientation": _GAAL_AUC.format("MO_GAAL", "0.78"),
            "check_pickle_round_trip": "PyOD's MO_GAAL builds its networks from classes local to a "
            "function, which pickle cannot serialize (so it cannot be saved with adcore fit --model)",
        },
        "so-gaal": {"check_orientation": _GAAL_AUC.format("SO_GAAL", "0.81")},
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

_SUBSET = "check_methods_subset_invariance"
_ORDER = "check_methods_sample_order_invariance"
_IDEMPOTENT = "check_fit_idempotent"
# fits twice (array-like, then a DataFrame) and compares the labels
_TWO_FITS = "check_classifier_data_not_an_array"
_PICKLE = "check_estimators_pickle"
_ONE_FEATURE = "check_fit2d_1feature"

#: scikit-learn's estimator checks (adcore.testing.sklearn_checks) each detector fails, and why.
#: Merged into ``xfail_checks`` with the conformance kit's own (the check names differ).
SKLEARN_XFAIL_CHECKS: dict[str, dict[str, str]] = {
    "ae1svm": {
        _SUBSET: "PyOD's AE1SVM cannot score a single row (ValueError: setting an array element...)",
    },
    "alad": {
        _SUBSET: "PyOD's ALAD scores with dropout active: the same rows score differently",
        _ORDER: "PyOD's ALAD scores with dropout active: the same rows score differently",
        _PICKLE: "PyOD's ALAD scores with dropout active: no two scorings agree",
    },
    "auto-encoder": {
        _SUBSET: "PyOD's AutoEncoder computes in float32: a row scored alone rounds differently from the "
        "same row in a batch (~1e-7, more than the check's tolerance)"
    },
    "cd": {
        _SUBSET: "PyOD's CD takes each row's leverage within the scored batch",
        _ONE_FEATURE: "PyOD's CD regresses each feature on the others: it needs 2 features or more",
    },
    "cof": {
        _SUBSET: "PyOD's COF chains neighbours within the scored batch (IndexError on a single row)",
        _IDEMPOTENT: "PyOD's COF raises IndexError when a fit has no more rows than it needs neighbours",
    },
    "copod": {_SUBSET: "PyOD's COPOD re-estimates its ECDFs on the training rows plus the scored batch"},
    "deep-svdd": {_IDEMPOTENT: "PyOD's DeepSVDD trains in float32: two seeded fits agree to ~1e-7, not 1e-9"},
    "dif": {_SUBSET: "PyOD's DIF standardizes its deep representations over the scored batch"},
    "ecod": {_SUBSET: "PyOD's ECOD re-estimates its ECDFs on the training rows plus the scored batch"},
    "feature-bagging": {
        _ONE_FEATURE: "PyOD's FeatureBagging draws between 2 and all features: it needs 2 or more"
    },
    "kpca": {
        _SUBSET: "with its default n_components PyOD's KPCA scores scikit-learn's 20 x 3 rows at ~1e-16, so "
        "labels flip with rounding (scikit-learn sets n_components=1 on PyOD's own class, which exposes it)"
    },
    "lmdd": {
        _SUBSET: "PyOD's LMDD measures each row's deviation within the scored batch",
        _ORDER: "PyOD's LMDD measures deviations in the order the rows come",
    },
    "mo-gaal": {
        _PICKLE: "PyOD's MO_GAAL builds its networks from classes local to a function, which pickle "
        "cannot serialize",
    },
    "rgraph": {
        _SUBSET: "PyOD's RGraph represents each scored row by the others in its batch",
        _ORDER: "PyOD's RGraph represents each scored row by the others in its batch, iteratively: "
        "the order of the rows changes the result",
    },
    "rod": {_SUBSET: "PyOD's ROD scales each row's angles within the scored batch"},
    "sod": {
        _SUBSET: "PyOD's SOD finds reference sets within the scored batch: it needs more rows than "
        "n_neighbors",
        _ORDER: "PyOD's SOD finds reference sets within the scored batch",
    },
    "sos": {_SUBSET: "PyOD's SOS scores a batch against itself, not against the training data"},
    "suod": {
        _SUBSET: "PyOD's SUOD averages members that include COPOD, whose scores depend on the batch",
        _IDEMPOTENT: "PyOD's SUOD takes no random_state (its members and projections are unseeded)",
        _TWO_FITS: "PyOD's SUOD takes no random_state (its members and projections are unseeded)",
    },
    "vae": {
        _SUBSET: "PyOD's VAE samples its latent code when scoring",
        _ORDER: "PyOD's VAE samples its latent code when scoring",
        _PICKLE: "PyOD's VAE samples its latent code when scoring: no two scorings agree",
    },
}

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
    # PyOD trains these two on full batches only (32 rows by default), and scikit-learn's
    # checks (adcore.testing.sklearn_checks, which use test_params too) fit 10 to 30 rows
    "vae": {"epoch_num": 5, "batch_size": 4},  # 30 epochs
    "auto-encoder": {"batch_size": 4},
    # scikit-learn's checks fit 10 to 40 rows; PyOD refuses fewer rows than these sizes
    "sampling": {"subset_size": 8},  # 20
    "sod": {"n_neighbors": 8, "ref_set": 4},  # 20 and 10
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
    xfail = {**XFAIL_CHECKS.get(name, {}), **SKLEARN_XFAIL_CHECKS.get(name, {})}
    if xfail:
        out["xfail_checks"] = xfail
    if name in TEST_PARAMS:
        out["test_params"] = dict(TEST_PARAMS[name])
    if name in SLOW or SLOW_NEEDS.intersection(needs):
        out["slow"] = True
    return out
