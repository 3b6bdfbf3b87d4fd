"""The conformance kit: the checks every adcore detector must pass, for plugin authors.

In the spirit of scikit-learn's ``check_estimator``, one call tells a plugin author whether
a detector behaves as adcore and its users expect::

    from adcore.testing import check_detector, parametrize_with_checks

    check_detector("mine:maxabs")            # raises AssertionError: detector, check, fix

    @parametrize_with_checks(["mine:maxabs"])  # one pytest case per (detector, check)
    def test_conformance(subject, check):
        check(subject)

A check builds detectors through :class:`adcore.Detector`, exactly as users do, on small
synthetic data (200 x 4 training rows with 10 far-away outliers, so a full run stays in
seconds). Expected failures are declared by the detector's registration, never special-
cased here: ``register(..., xfail_checks={"check_orientation": "why"})``; ``slow=True``
marks a detector's cases ``pytest.mark.slow``; ``heavy_modules=("mylib",)`` names what
listing must not import; ``test_params={"epochs": 2}`` are parameters the kit builds the
detector with (cheaper settings, so a deep model's checks take seconds, not minutes). A
detector whose ``needs`` are not installed is skipped.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import pickle
import subprocess
import sys
import unittest
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import TypeAdapter

from adcore.errors import DataError, SchemaMismatchError

SEED = 0
#: Modules that listing or describing any detector must not import, whatever it declares.
HEAVY_MODULES = ("sklearn", "scipy", "pyod", "torch")
#: Training ROC-AUC a detector must reach on the planted outliers (they are far and obvious).
MIN_AUC = 0.9

Check = Callable[["Subject"], None]


# ====================================================================== subjects
@dataclass(frozen=True)
class Subject:
    """The detector under test: how to build it, and what its registration declares."""

    label: str
    algorithm: str | Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    plugin: str | None = None
    #: The registration's ``test_params`` (empty when the kit was told ``test_params=False``):
    #: applied under ``params``, not shown in the label, named in every failure message.
    test_params: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # shown by pytest next to a failing case
        return f"Subject({self.label})"

    @property
    def key(self) -> str:
        return f"{self.label}|{sorted(self.test_params.items())!r}|{sorted(self.params.items())!r}"

    @property
    def xfail_checks(self) -> dict[str, str]:
        return dict(self.metadata.get("xfail_checks") or {})

    @property
    def slow(self) -> bool:
        return bool(self.metadata.get("slow"))

    @property
    def heavy_modules(self) -> tuple[str, ...]:
        declared = tuple(self.metadata.get("heavy_modules") or ())
        return tuple(dict.fromkeys(declared + HEAVY_MODULES))

    def missing_needs(self) -> list[str]:
        from adcore.plugins import _importable

        return [n for n in self.metadata.get("needs") or () if not _importable(n)]

    def build(self, **overrides: Any) -> Any:
        """A fresh, unfitted :class:`adcore.Detector` (seeded unless ``random_state`` is overridden)."""
        from adcore.domain.detector import Detector

        values = {"random_state": SEED, **self.test_params, **self.params, **overrides}
        return Detector(self.algorithm, **values)


def subject_for(
    name_or_factory: str | Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    test_params: bool = True,
) -> Subject:
    """Resolve a registered name (``plugin:name`` or bare) or take a factory as it is.

    A registered detector is built with its registration's ``test_params`` (``params``
    win over them) unless ``test_params=False``, which checks it with its real defaults.
    """
    params = dict(params or {})
    suffix = f"({', '.join(f'{k}={v!r}' for k, v in params.items())})" if params else ""
    if callable(name_or_factory):
        label = getattr(name_or_factory, "__qualname__", None) or repr(name_or_factory)
        return Subject(label + suffix, name_or_factory, params)
    from adcore.plugins import get_host

    reg = get_host().resolve("detector", name_or_factory)
    declared = reg.metadata.get("test_params") or {}
    if not isinstance(declared, Mapping):
        raise TypeError(
            f"{reg.qualified_name}: test_params must be a mapping of parameter names to values, "
            f"got {declared!r}"
        )
    overrides = {k: v for k, v in declared.items() if k not in params} if test_params else {}
    return Subject(
        reg.qualified_name + suffix,
        reg.qualified_name,
        params,
        dict(reg.metadata),
        reg.plugin,
        overrides,
    )


def registered_detectors(plugin: str) -> list[str]:
    """Qualified names of every detector ``plugin`` registers (what its test suite should check)."""
    from adcore.plugins import get_host

    return sorted(r.qualified_name for r in get_host().registry("detector").values() if r.plugin == plugin)


# ====================================================================== data
@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray  # 1 = planted outlier


def make_data(seed: int, n_inliers: int, n_outliers: int, n_features: int = 4) -> Data:
    """Gaussian inliers and outliers 6 to 9 standard deviations away in random directions, shuffled.

    Every outlier is extreme in at least one feature (so per-feature detectors see it) and
    far from every other point (so density detectors do): a clear case any detector
    should rank nearly perfectly.
    """
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(n_inliers, n_features))
    directions = rng.normal(size=(n_outliers, n_features))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    outliers = directions * rng.uniform(6.0, 9.0, size=(n_outliers, 1))
    X = np.vstack([inliers, outliers])
    y = np.r_[np.zeros(n_inliers, dtype=np.int64), np.ones(n_outliers, dtype=np.int64)]
    order = rng.permutation(len(y))
    return Data(np.ascontiguousarray(X[order]), y[order])


TRAIN = make_data(SEED, 190, 10)
NEW = make_data(SEED + 1, 54, 6)


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC by the rank-sum formula, ties averaged (numpy only, so the kit needs no sklearn)."""
    scores = np.asarray(scores, dtype=np.float64)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    n_pos = int(np.sum(y == 1))
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# ====================================================================== helpers
def _fail(subject: Subject, check: str, problem: str, fix: str) -> AssertionError:
    built = (
        f"\n  built with the registration's test_params {dict(subject.test_params)!r} "
        "(check_detector(..., test_params=False) checks the defaults)"
        if subject.test_params
        else ""
    )
    return AssertionError(f"{subject.label} failed {check}: {problem}\n  how to fix: {fix}{built}")


_REFERENCE: OrderedDict[str, Any] = OrderedDict()


def _reference(subject: Subject, check: str) -> Any:
    """A seeded detector fitted on the training data: fitted once per subject, copied per check.

    Checks only read it (a copy protects them from each other), which keeps a full run at
    two fits per detector (this and :func:`_second_fit`) however many checks read one.
    """
    if subject.key not in _REFERENCE:
        try:
            _REFERENCE[subject.key] = subject.build().fit(TRAIN.X)
        except Exception as exc:
            _REFERENCE[subject.key] = exc
        while len(_REFERENCE) > 4:
            _REFERENCE.popitem(last=False)
    fitted = _REFERENCE[subject.key]
    if isinstance(fitted, Exception):
        raise _fail(
            subject,
            check,
            f"fit on a clean {TRAIN.X.shape} float64 matrix raised {type(fitted).__name__}: {fitted}",
            "fit(X) must accept any finite float64 matrix with a few hundred rows and a few columns",
        ) from fitted
    return copy.deepcopy(fitted)


def _scores(subject: Subject, check: str, detector: Any, X: np.ndarray, what: str) -> np.ndarray:
    try:
        scores = detector.decision_function(X)
    except Exception as exc:
        raise _fail(
            subject,
            check,
            f"decision_function on {what} of shape {X.shape} raised {type(exc).__name__}: {exc}",
            "decision_function(X) must score any rows with the training width, one score per row",
        ) from exc
    return np.asarray(scores)


def _assert_same(subject: Subject, check: str, a: np.ndarray, b: np.ndarray, problem: str, fix: str) -> None:
    """Equal to float32 precision: many detectors (every torch one) compute in float32, where
    a batch of a different size may round differently; real differences are far larger."""
    b = np.asarray(b, dtype=np.float64)
    scale = float(np.max(np.abs(b))) if b.size and np.all(np.isfinite(b)) else 0.0
    try:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * scale + 1e-12)
    except AssertionError as exc:
        worst = (
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
            if np.shape(a) == np.shape(b)
            else float("nan")
        )
        raise _fail(subject, check, f"{problem} (largest difference {worst:.3g})", fix) from exc


# ====================================================================== checks
def check_params_schema(subject: Subject) -> None:
    """The parameter model builds, accepts its own defaults and the given params, and serializes."""
    name = "check_params_schema"
    from adcore.domain.params import json_schema

    detector = subject.build()
    try:
        model = detector.params_model()
        json.dumps(json_schema(model), default=str)
    except Exception as exc:
        raise _fail(
            subject,
            name,
            f"the parameter model cannot be built: {type(exc).__name__}: {exc}",
            "pass params= as a pydantic model, 'module:Model' or a list of {'name','type','default'} dicts",
        ) from exc
    for key, info in model.model_fields.items():  # type: ignore[attr-defined]
        if info.is_required() and key not in subject.params and key not in subject.test_params:
            raise _fail(
                subject,
                name,
                f"the required parameter {key!r} has no value",
                f"pass a value to the kit: check_detector(name, params={{{key!r}: ...}})",
            )
        if info.is_required() or info.default_factory is not None:
            continue
        try:
            annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            TypeAdapter(annotation).validate_python(info.default)
        except Exception as exc:
            raise _fail(
                subject,
                name,
                f"the default of {key!r} ({info.default!r}) fails its own type: {exc}",
                f"make the declared type of {key!r} admit its default (e.g. nullable for None)",
            ) from exc
    try:
        detector.validated_params()
    except Exception as exc:
        given = {**subject.test_params, **subject.params}
        raise _fail(
            subject,
            name,
            f"the parameters {given!r} do not validate: {exc}",
            "declare every constructor parameter with a type that admits its values (and name "
            "only declared parameters in test_params)",
        ) from exc


def check_registration_is_lazy(subject: Subject) -> None:
    """Listing and describing the detector, in a fresh interpreter, imports no heavy library."""
    name = "check_registration_is_lazy"
    if subject.plugin is None:
        return  # a bare factory is not registered: nothing is listed
    qualified = str(subject.algorithm)
    heavy = list(subject.heavy_modules)
    found = _probe_plugin(subject.plugin).get(qualified)
    if found is None or found:  # not probed, or blamed in the batch: probe it alone to be exact
        found = _probe({qualified: heavy})[qualified]
    if found is None:
        raise _fail(
            subject,
            name,
            "a fresh interpreter does not list it",
            "register it from an installed plugin (an 'adcore' entry point), not only in-process",
        )
    if found:
        raise _fail(
            subject,
            name,
            f"listing and describing it imported {', '.join(found)}",
            "register a lazy 'module:Class' factory and params as a list of dicts or a pydantic "
            "model in a module that imports no heavy library; import heavy libraries in fit",
        )


_PROBE = r"""
import json, sys
from adcore.services.catalog import describe_algorithm, list_algorithms
wanted = json.loads(sys.argv[1])
listed = {row["name"] for row in list_algorithms()}
out = {}
for name, heavy in wanted.items():
    if name not in listed:
        out[name] = None
        continue
    describe_algorithm(name)
    out[name] = sorted(h for h in heavy if any(m == h or m.startswith(h + ".") for m in sys.modules))
print(json.dumps(out))
"""
_PROBES: dict[str, dict[str, list[str] | None]] = {}


def _probe(wanted: dict[str, list[str]]) -> dict[str, list[str] | None]:
    """In a fresh interpreter: list, then describe each name in turn; the heavy modules loaded by then.

    Modules accumulate, so a name is blamed for what earlier ones imported too; callers
    re-probe a blamed name alone.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(wanted)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"listing/describing {list(wanted)} in a fresh interpreter failed:\n{proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.splitlines()[-1])


def _probe_plugin(plugin: str) -> dict[str, list[str] | None]:
    """One probe for all of a plugin's detectors, cached per plugin."""
    if plugin not in _PROBES:
        from adcore.plugins import get_host

        wanted = {
            r.qualified_name: list(subject_for(r.qualified_name).heavy_modules)
            for r in get_host().registry("detector").values()
            if r.plugin == plugin
        }
        _PROBES[plugin] = _probe(wanted)
    return _PROBES[plugin]


def check_fit_shapes_and_finite(subject: Subject) -> None:
    """Training scores, labels and threshold have the right shapes and are finite."""
    name = "check_fit_shapes_and_finite"
    detector = _reference(subject, name)
    n = TRAIN.X.shape[0]
    scores = np.asarray(detector.decision_scores_)
    if scores.shape != (n,):
        raise _fail(
            subject,
            name,
            f"decision_scores_ has shape {scores.shape}, expected ({n},)",
            "return one score per row from decision_function (or decision_scores_), a 1-D array",
        )
    if not np.all(np.isfinite(scores)):
        raise _fail(
            subject,
            name,
            f"{int(np.sum(~np.isfinite(scores)))} training scores are NaN or infinite",
            "guard divisions and logs (add a small epsilon, clip) so every score is finite",
        )
    if not np.isfinite(detector.threshold_):
        raise _fail(subject, name, f"threshold_ is {detector.threshold_}", "make the training scores finite")
    labels = np.asarray(detector.labels_)
    if labels.shape != (n,) or not set(np.unique(labels)) <= {0, 1}:
        raise _fail(subject, name, f"labels_ are not 0/1 of shape ({n},)", "do not override labels_")
    if len(np.unique(scores)) < 2:
        raise _fail(subject, name, "every training score is the same", "the score must vary with the data")


def check_orientation(subject: Subject) -> None:
    """Higher scores mean more anomalous: planted far outliers rank on top (ROC-AUC > 0.9)."""
    name = "check_orientation"
    detector = _reference(subject, name)
    auc = roc_auc(TRAIN.y, detector.decision_scores_)
    if auc <= MIN_AUC:
        hint = " (below 0.5: the scores look inverted)" if auc < 0.5 else ""
        raise _fail(
            subject,
            name,
            f"ROC-AUC of the training scores on 10 far outliers is {auc:.3f}{hint}, expected > {MIN_AUC}",
            "higher must mean more anomalous: negate a similarity, density or likelihood "
            "(e.g. return -score_samples(X) for a scikit-learn estimator)",
        )


def check_score_new_data(subject: Subject) -> None:
    """New rows of the same width score with one finite score each, stably, outliers on top."""
    name = "check_score_new_data"
    detector = _reference(subject, name)
    scores = _scores(subject, name, detector, NEW.X, "new data")
    if scores.shape != (NEW.X.shape[0],) or not np.all(np.isfinite(scores)):
        raise _fail(
            subject,
            name,
            f"scores of new data: shape {scores.shape}, finite={np.all(np.isfinite(scores))}",
            "decision_function must return one finite score per row",
        )
    again = _scores(subject, name, detector, NEW.X, "the same new data again")
    _assert_same(
        subject,
        name,
        scores,
        again,
        "scoring the same rows twice gave different scores",
        "decision_function must not change the fitted state or draw random numbers",
    )
    auc = roc_auc(NEW.y, scores)
    if auc <= MIN_AUC:
        raise _fail(
            subject,
            name,
            f"ROC-AUC on new data with 6 far outliers is {auc:.3f}, expected > {MIN_AUC}",
            "score new rows against the fitted model with the same orientation as training scores",
        )


def check_score_single_row(subject: Subject) -> None:
    """One row at a time scores as it does within a batch (what streaming relies on)."""
    name = "check_score_single_row"
    detector = _reference(subject, name)
    batch = _scores(subject, name, detector, NEW.X[:5], "a batch of 5 rows")
    single = np.concatenate(
        [_scores(subject, name, detector, NEW.X[i : i + 1], "a single row") for i in range(5)]
    )
    _assert_same(
        subject,
        name,
        single,
        batch,
        "a row's score depends on the other rows scored with it",
        "score each row against the fitted model only, not against the batch it arrives in",
    )


def _clone(detector: Any) -> Any:
    try:
        from sklearn.base import clone
    except ImportError:
        return type(detector)(**detector.get_params())
    return clone(detector)


def _twin(original: Any) -> tuple[Any, str | None]:
    """``clone(original)``, and why its parameters differ from the original's (None if they do not)."""
    twin = _clone(original)
    params, twin_params = original.get_params(), twin.get_params()
    if set(params) != set(twin_params) or any(repr(params[k]) != repr(twin_params[k]) for k in params):
        return twin, f"get_params differ after clone: {params} != {twin_params}"
    return twin, None


_SECOND: OrderedDict[str, Any] = OrderedDict()


def _second_fit(subject: Subject) -> Any:
    """A second fit on the training data, independent of the reference: fitted once per subject.

    The detector is a clone of a freshly built one, i.e. built anew from the same
    parameters and seed (a fresh one where clone fails or changes the parameters, which
    check_clone_round_trip reports). check_seed_determinism and check_clone_round_trip
    both compare it with the reference, so one fit serves both. Returns a copy, or the
    exception fitting raised.
    """
    if subject.key not in _SECOND:
        try:
            detector = subject.build()
            try:
                twin, problem = _twin(detector)
            except Exception:
                twin, problem = None, "clone failed"
            _SECOND[subject.key] = (detector if problem else twin).fit(TRAIN.X)
        except Exception as exc:
            _SECOND[subject.key] = exc
        while len(_SECOND) > 4:
            _SECOND.popitem(last=False)
    fitted = _SECOND[subject.key]
    return fitted if isinstance(fitted, Exception) else copy.deepcopy(fitted)


def check_seed_determinism(subject: Subject) -> None:
    """Two fits with the same random_state give the same scores."""
    name = "check_seed_determinism"
    first = _reference(subject, name)
    second = _second_fit(subject)
    if isinstance(second, Exception):
        raise _fail(
            subject,
            name,
            f"a second fit raised {type(second).__name__}: {second}",
            "fit must be repeatable",
        ) from second
    fix = (
        "declare random_state in params (adcore passes --seed to it) and use it for every random "
        "source: numpy Generators, scikit-learn estimators, torch.manual_seed"
    )
    _assert_same(
        subject,
        name,
        second.decision_scores_,
        first.decision_scores_,
        "two fits with the same random_state gave different training scores",
        fix,
    )
    _assert_same(
        subject,
        name,
        _scores(subject, name, second, NEW.X, "new data"),
        _scores(subject, name, first, NEW.X, "new data"),
        "two fits with the same random_state score new data differently",
        fix,
    )


def check_clone_round_trip(subject: Subject) -> None:
    """``clone`` (scikit-learn's, or a rebuild from get_params) gives the same parameters and scores."""
    name = "check_clone_round_trip"
    try:
        _, problem = _twin(subject.build())
    except Exception as exc:
        raise _fail(
            subject,
            name,
            f"clone raised {type(exc).__name__}: {exc}",
            "keep constructor arguments unchanged as attributes so get_params can return them",
        ) from exc
    if problem:
        raise _fail(subject, name, problem, "parameters must round-trip through get_params unchanged")
    reference = _reference(subject, name)
    twin = _second_fit(subject)  # a clone, fitted (shared with check_seed_determinism)
    if isinstance(twin, Exception):
        raise _fail(
            subject,
            name,
            f"fitting the clone raised {type(twin).__name__}: {twin}",
            "fit must work on a detector rebuilt from get_params",
        ) from twin
    _assert_same(
        subject,
        name,
        twin.decision_scores_,
        reference.decision_scores_,
        "the clone's training scores differ from the original's",
        "the fitted result must depend only on the parameters and the seed",
    )


def check_pickle_round_trip(subject: Subject) -> None:
    """A fitted detector survives pickling and scores exactly as before."""
    name = "check_pickle_round_trip"
    detector = _reference(subject, name)
    try:
        restored = pickle.loads(pickle.dumps(detector))
    except Exception as exc:
        raise _fail(
            subject,
            name,
            f"pickling the fitted detector raised {type(exc).__name__}: {exc}",
            "keep fitted state picklable: no lambdas, open files, locks or generators; define "
            "classes at module level (or implement __getstate__)",
        ) from exc
    _assert_same(
        subject,
        name,
        _scores(subject, name, restored, NEW.X, "new data after unpickling"),
        _scores(subject, name, detector, NEW.X, "new data"),
        "the unpickled detector scores new data differently",
        "pickle every fitted attribute that scoring uses",
    )


def check_bad_input(subject: Subject) -> None:
    """NaN, inf, one row and a wrong feature count raise adcore's DataError/SchemaMismatchError."""
    name = "check_bad_input"
    cases: list[tuple[str, Callable[[], Any], type[Exception]]] = []
    for label, value in (("NaN", np.nan), ("inf", np.inf)):
        bad = TRAIN.X.copy()
        bad[3, 1] = value
        cases.append((f"fit on data with {label}", lambda bad=bad: subject.build().fit(bad), DataError))
    cases.append(("fit on 1 row", lambda: subject.build().fit(TRAIN.X[:1]), DataError))
    fitted = _reference(subject, name)
    cases.append(
        (
            "scoring data with one feature too many",
            lambda: fitted.decision_function(np.hstack([NEW.X, NEW.X[:, :1]])),
            SchemaMismatchError,
        )
    )
    nan_rows = NEW.X.copy()
    nan_rows[0, 0] = np.nan
    cases.append(("scoring data with NaN", lambda: fitted.decision_function(nan_rows), DataError))
    for what, action, expected in cases:
        try:
            action()
        except expected:
            continue
        except Exception as exc:
            raise _fail(
                subject,
                name,
                f"{what} raised {type(exc).__name__}: {exc}, not {expected.__name__}",
                "let adcore.Detector validate input (do not bypass it), and raise adcore.errors."
                f"{expected.__name__} for input you reject yourself",
            ) from exc
        raise _fail(
            subject,
            name,
            f"{what} was accepted; expected {expected.__name__}",
            "let adcore.Detector validate input rather than calling the estimator directly",
        )


CHECKS: list[Check] = [
    check_params_schema,
    check_registration_is_lazy,
    check_fit_shapes_and_finite,
    check_orientation,
    check_score_new_data,
    check_score_single_row,
    check_seed_determinism,
    check_clone_round_trip,
    check_pickle_round_trip,
    check_bad_input,
]


# ====================================================================== runners
def _selected(checks: Iterable[str] | None) -> list[Check]:
    if checks is None:
        return list(CHECKS)
    by_name = {c.__name__: c for c in CHECKS}
    unknown = [c for c in checks if c not in by_name]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; known: {', '.join(by_name)}")
    return [by_name[c] for c in checks]


def check_detector(
    name_or_factory: str | Callable[..., Any],
    *,
    params: Mapping[str, Any] | None = None,
    checks: Iterable[str] | None = None,
    test_params: bool = True,
) -> dict[str, str]:
    """Run every check on one detector; raise one AssertionError listing each failure.

    Checks the registration declares in ``xfail_checks`` are not run (their reason is
    reported). A detector whose ``needs`` are not installed raises ``unittest.SkipTest``
    (pytest reports it as skipped). The detector is built with its registration's
    ``test_params`` unless ``test_params=False``. Returns ``{check: "passed" |
    "expected failure: why"}``.
    """
    subject = subject_for(name_or_factory, params, test_params=test_params)
    missing = subject.missing_needs()
    if missing:
        raise unittest.SkipTest(
            f"{subject.label} needs {', '.join(missing)}: pip install {' '.join(missing)}"
        )
    report: dict[str, str] = {}
    failures: list[str] = []
    for check in _selected(checks):
        reason = subject.xfail_checks.get(check.__name__)
        if reason:
            report[check.__name__] = f"expected failure: {reason}"
            continue
        try:
            check(subject)
        except AssertionError as exc:
            failures.append(str(exc))
            report[check.__name__] = "failed"
        else:
            report[check.__name__] = "passed"
    if failures:
        raise AssertionError(
            f"{subject.label}: {len(failures)} conformance check(s) failed\n" + "\n".join(failures)
        )
    return report


def parametrize_with_checks(
    names_or_factories: Iterable[str | Callable[..., Any]],
    *,
    params: Mapping[str, Any] | None = None,
    checks: Iterable[str] | None = None,
    test_params: bool = True,
) -> Any:
    """A ``pytest.mark.parametrize``: one case per (detector, check), id ``pyod:iforest-check_orientation``.

    The test receives ``subject`` and ``check`` and calls ``check(subject)``. Cases are
    marked ``xfail`` from the registration's ``xfail_checks``, ``slow`` from ``slow=True``
    (register the ``slow`` marker in your pytest configuration), and skipped when the
    detector's ``needs`` are not installed. Detectors are built with their registration's
    ``test_params`` unless ``test_params=False`` (the ids are the same either way).
    """
    import pytest

    cases = []
    for item in names_or_factories:
        subject = subject_for(item, params, test_params=test_params)
        missing = subject.missing_needs()
        for check in _selected(checks):
            marks: list[Any] = []
            if missing:
                marks.append(
                    pytest.mark.skip(reason=f"needs {', '.join(missing)}: pip install {' '.join(missing)}")
                )
            reason = subject.xfail_checks.get(check.__name__)
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, strict=False))
            if subject.slow:
                marks.append(pytest.mark.slow)
            cases.append(pytest.param(subject, check, marks=marks, id=f"{subject.label}-{check.__name__}"))
    return pytest.mark.parametrize(("subject", "check"), cases)


# ====================================================================== scikit-learn's checks
#: scikit-learn's estimator checks (``sklearn.utils.estimator_checks``) that the kit runs on no
#: adcore detector, each with the reason: the one list (docs/sklearn-compatibility.md repeats
#: it). A detector's own expected failures are declared by its registration, in the same
#: ``xfail_checks`` as the kit's checks, under the check's name.
SKLEARN_EXCLUDED: dict[str, str] = {
    "check_outliers_fit_predict": "asserts scikit-learn's outlier labels, -1 (outlier) and +1 (inlier); "
    "adcore's labels are 1 (anomaly) and 0, as PyOD's",
    "check_outliers_train": "asserts -1/+1 labels and that decision_function is >= 0 exactly for inliers; "
    "adcore's labels are 1/0 and its scores grow with anomalousness (PyOD's convention), so "
    "decision_function - threshold_ is >= 0 for anomalies",
    "check_no_attributes_set_in_init": "Detector is one wrapper for every algorithm: it stores the "
    "algorithm's own parameters (declared by its registration) as attributes of the same name, "
    "unchanged, from **params; scikit-learn takes the allowed names from __init__'s signature, which "
    "cannot list them. clone, get_params and set_params work (check_get_params_invariance, "
    "check_set_params and check_estimators_overwrite_params run)",
}


# ============================================================ parameter ranges
def out_of_range_cases(
    names: Iterable[str], *, base: Mapping[str, Mapping[str, Any]] | None = None
) -> list[tuple[str, str, Any]]:
    """``(detector, parameter, value)`` for each value just outside a range or choice the
    detector's parameter model declares (``adcore.domain.params.out_of_range_values``).

    ``base`` gives the parameters a detector needs before anything else can be checked
    (an ensemble's ``members``). Plugins parametrize their range tests with it.
    """
    from adcore.domain.detector import Detector
    from adcore.domain.params import out_of_range_values

    cases = []
    for name in names:
        model = Detector(name, **dict((base or {}).get(name, {}))).params_model()
        for param, values in out_of_range_values(model).items():
            cases += [(name, param, value) for value in values]
    return cases


@contextlib.contextmanager
def _building_fails() -> Any:
    """While active, a Detector that gets as far as building its estimator fails the check."""
    from adcore.domain.detector import Detector

    def built(self: Any) -> Any:
        raise AssertionError(f"{self.algorithm_name} was built: its parameters were not refused first")

    original = Detector._factory
    Detector._factory = built  # type: ignore[method-assign]
    try:
        yield
    finally:
        Detector._factory = original  # type: ignore[method-assign]


def check_out_of_range_refused(
    name: str, param: str, value: Any, *, base: Mapping[str, Any] | None = None
) -> str:
    """``param=value`` (outside its declared range) is refused before the detector is built.

    The refusal is one line, a ``ParameterError`` naming the parameter; returns the message
    so a plugin's test can say more about it. Raises ``AssertionError`` otherwise.
    """
    from adcore.domain.detector import Detector
    from adcore.errors import ParameterError

    rows = np.random.default_rng(SEED).normal(size=(20, 4))
    with _building_fails():
        try:
            Detector(name, **{**dict(base or {}), param: value}).fit(rows)
        except ParameterError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{name}: {param}={value!r} is outside its declared range but was accepted")
    assert "\n" not in message and param in message, message
    return message


def _sklearn_check_name(check: Callable[..., Any]) -> str:
    """``check_outliers_train`` for the check and any partial of it (scikit-learn's naming)."""
    func = getattr(check, "func", check)
    return str(getattr(func, "__name__", repr(func)))


def sklearn_check_id(check: Callable[..., Any]) -> str:
    """The check's name with the keywords it was given, as scikit-learn's ids write it:
    ``check_estimators_pickle(readonly_memmap=True)``."""
    keywords = getattr(check, "keywords", None) or {}
    args = ",".join(f"{k}={v}" for k, v in keywords.items())
    return f"{_sklearn_check_name(check)}({args})" if args else _sklearn_check_name(check)


def _sklearn_extra_checks() -> list[Callable[..., Any]]:
    """Checks scikit-learn defines but its generator does not yield (its own test suite runs them):
    the feature-name rules, which adcore follows in scikit-learn's words."""
    from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

    return [check_dataframe_column_names_consistency]


def sklearn_checks(
    name_or_factory: str | Callable[..., Any] | Subject,
    *,
    params: Mapping[str, Any] | None = None,
    test_params: bool = True,
) -> Iterable[tuple[Any, Callable[[Any], None]]]:
    """scikit-learn's estimator checks for one detector: ``(detector, check)`` pairs.

    Run one with ``check(detector)``.
    The detector is an unfitted :class:`adcore.Detector`, built as the kit builds it (seeded,
    with the registration's ``test_params`` unless ``test_params=False``). Every check
    ``sklearn.utils.estimator_checks`` yields for an outlier detector is included, plus the
    feature-name check it runs only on its own estimators, less :data:`SKLEARN_EXCLUDED`. The
    registration's ``xfail_checks`` are not applied here (the pairs are what would run);
    :func:`parametrize_with_sklearn_checks` and :func:`check_sklearn_estimator` apply them.
    Needs scikit-learn (and pandas for the feature-name check, which skips without it).
    """
    import warnings

    try:
        from sklearn.utils.estimator_checks import estimator_checks_generator
    except ImportError as exc:  # not installed, or older than 1.6 (which added the generator)
        raise ImportError(
            "adcore.testing's scikit-learn checks need scikit-learn >= 1.6: pip install -U scikit-learn"
        ) from exc

    subject = (
        name_or_factory
        if isinstance(name_or_factory, Subject)
        else subject_for(name_or_factory, params, test_params=test_params)
    )
    detector = subject.build()
    sklearn_name = type(detector).__name__
    with warnings.catch_warnings():  # "does not inherit from BaseEstimator": by design (no sklearn import)
        warnings.simplefilter("ignore", UserWarning)
        pairs = list(estimator_checks_generator(detector, legacy=True))
    pairs += [(detector, functools.partial(check, sklearn_name)) for check in _sklearn_extra_checks()]
    return [(est, check) for est, check in pairs if _sklearn_check_name(check) not in SKLEARN_EXCLUDED]


def check_sklearn_estimator(
    name_or_factory: str | Callable[..., Any],
    *,
    params: Mapping[str, Any] | None = None,
    test_params: bool = True,
) -> dict[str, str]:
    """Run :func:`sklearn_checks` on one detector; raise one AssertionError listing each failure.

    Checks named in the registration's ``xfail_checks`` are not run (their reason is
    reported); a check scikit-learn skips (``SkipTest``) is reported as skipped. Returns
    ``{check id: "passed" | "expected failure: why" | "skipped: why"}``.
    """
    subject = subject_for(name_or_factory, params, test_params=test_params)
    missing = subject.missing_needs()
    if missing:
        needs = f"{', '.join(missing)}: pip install {' '.join(missing)}"
        raise unittest.SkipTest(f"{subject.label} needs {needs}")
    report: dict[str, str] = {}
    failures: list[str] = []
    for detector, check in sklearn_checks(subject):
        check_id = sklearn_check_id(check)
        reason = subject.xfail_checks.get(_sklearn_check_name(check))
        if reason:
            report[check_id] = f"expected failure: {reason}"
            continue
        try:
            check(detector)
        except unittest.SkipTest as exc:
            report[check_id] = f"skipped: {exc}"
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            failures.append(f"{subject.label} failed {check_id}: {type(exc).__name__}: {first}")
            report[check_id] = "failed"
        else:
            report[check_id] = "passed"
    if failures:
        raise AssertionError(
            f"{subject.label}: {len(failures)} scikit-learn check(s) failed\n" + "\n".join(failures)
        )
    return report


def parametrize_with_sklearn_checks(
    names_or_factories: Iterable[str | Callable[..., Any]],
    *,
    params: Mapping[str, Any] | None = None,
    test_params: bool = True,
) -> Any:
    """A ``pytest.mark.parametrize`` over scikit-learn's checks: one case per (detector, check).

    The test receives ``estimator`` and ``check`` and calls ``check(estimator)``, as with
    scikit-learn's own ``parametrize_with_checks``; ids read ``pyod:iforest-check_fit1d``.
    Marks come from the registration as for :func:`parametrize_with_checks`: ``xfail``
    from ``xfail_checks`` (not strict: several declared failures come from unseeded
    libraries, which pass now and then; pytest reports those as XPASS), ``slow`` from
    ``slow=True``, a skip when ``needs`` are missing.
    Without scikit-learn installed there is one case, skipped.
    """
    import pytest

    if not _importable_module("sklearn"):
        skip = pytest.mark.skip(reason="scikit-learn is not installed: pip install scikit-learn")
        return pytest.mark.parametrize(("estimator", "check"), [pytest.param(None, None, marks=skip)])
    cases = []
    for item in names_or_factories:
        subject = subject_for(item, params, test_params=test_params)
        missing = subject.missing_needs()
        for detector, check in sklearn_checks(subject):
            marks: list[Any] = []
            if missing:
                marks.append(
                    pytest.mark.skip(reason=f"needs {', '.join(missing)}: pip install {' '.join(missing)}")
                )
            reason = subject.xfail_checks.get(_sklearn_check_name(check))
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, strict=False))
            if subject.slow:
                marks.append(pytest.mark.slow)
            case_id = f"{subject.label}-{sklearn_check_id(check)}"
            cases.append(pytest.param(detector, check, marks=marks, id=case_id))
    return pytest.mark.parametrize(("estimator", "check"), cases)


def _importable_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
