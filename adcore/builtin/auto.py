"""``core:auto``: a label-free choice of detectors from the data, combined by agreement.

Users should not have to know which detector suits their data. ``auto`` fits a small pool
of detectors from different families, so that some member sees whatever kind of anomaly
the data holds (isolation for scattered global anomalies, k-nearest-neighbour distance for
local ones, a robust covariance for broken dependencies, cluster-based distances for
multi-modal data), and combines them with adcore's ``consensus`` (each member's tail
probability, weighted by how well it agrees with the others: see
:mod:`adcore.domain.combination`). No labels are used anywhere.

Two things were learned from labelled benchmark data, each by a fixed rule that
``benchmarks/auto_select.py`` re-runs under leave-one-dataset-out on ADBench's 16 sets (so
that its honest figure is reported beside the in-sample one):

- the pool: one detector per family, a family per anomaly type ADBench names (isolation and
  per-feature tails for scattered anomalies, neighbour distance for local ones, a covariance
  model for broken dependencies, clusters for clustered ones), each family's member being
  its best by mean rank over the datasets. The families were fixed beforehand; a freer
  search over all small subsets overfitted (0.8747 under leave-one-out, 0.8913 in-sample);
- :data:`ANCHOR_WEIGHT`: the best mean among the weights that keep every dataset within
  0.02 ROC-AUC of isolation forest alone.

Generated data of ADBench's four anomaly types checks it and chose nothing. What the data
decides, from its shape alone:

- a robust covariance (MCD) needs many more rows than features and costs ``O(d^3)`` per
  step: past :data:`MAX_MCD_FEATURES` features it is replaced by PCA's reconstruction
  error, the other covariance-aware member;
- a member that fails on this data (CBLOF cannot always separate large and small
  clusters) is dropped, and the reason recorded, as long as two members remain;
- without PyOD, the pool falls back to scikit-learn's, then to numpy-only detectors;
- past :data:`MAX_FIT_ROWS` rows, the members other than the anchor are fitted on a seeded
  sample of that many rows (k-nearest neighbours and MCD grow faster than linearly: 11 and
  12 s on 100,000 x 20 where isolation forest takes 0.6 s), and every row is still scored by
  every member: a sampled row keeps its fit-time score (its distance to the *other* rows),
  any other row is scored as new data. The anchor sees every row.

Two fixed design choices make it steadier: CBLOF's k-means start varies a lot with the
seed (ROC-AUC 0.66 to 0.95 on one ADBench set), so it is fitted with :data:`BAGS` seeds and
their standardised scores averaged; and the pool's first member (isolation forest, the
best single detector on ADBench) keeps :data:`ANCHOR_WEIGHT` times its agreement weight,
which keeps ``auto`` close to it where the other members are all weak (1 trusts agreement
alone: the best mean on ADBench, but 0.036 below isolation forest on one set; the trade-off
is tabulated by ``benchmarks/auto_select.py``).

Everything ``auto`` decided is in ``choice_`` (and in :meth:`report`, which ``adcore run
--json`` and ``--explain-choice`` print): the data's shape, the pool used, members dropped
and why, and each member's agreement weight.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from adcore.domain.combination import ScoreCombiner, ScoreNormalizer
from adcore.errors import DataError, ParameterError

#: Pools, best first; the first whose members are all installed is used. The PyOD pool has
#: the best mean ROC-AUC on ADBench among the pools tried (one member per family); the
#: others are its nearest equivalents for installs without PyOD or without scikit-learn.
POOLS: dict[str, tuple[str, ...]] = {
    "pyod": ("pyod:iforest", "pyod:cblof", "pyod:mcd", "pyod:knn"),
    "sklearn": ("sklearn:iforest", "sklearn:elliptic", "sklearn:lof", "core:hbos"),
    "core": ("core:hbos", "core:mahalanobis", "core:mad"),
}
#: Per pool, the member replacing the robust covariance when there are too many features.
HIGH_DIM_SWAP: dict[str, tuple[str, str]] = {
    "pyod": ("pyod:mcd", "pyod:pca"),
    "sklearn": ("sklearn:elliptic", "core:mahalanobis"),
}
#: Above this many features the robust covariance is too slow (50 s on 3000 x 166) and its
#: estimate too noisy for the rows usually available.
MAX_MCD_FEATURES = 50
#: Above this many rows, members other than the anchor are fitted on a sample of this many:
#: 100,000 x 20 rows fit in 5.4 s instead of 16.2 s with 50,000, and ADBench's two sets past
#: it score the same (shuttle 0.9916 against 0.9919, smtp 0.9179 against 0.9174).
MAX_FIT_ROWS = 20_000
#: Members fitted with several seeds, their standardised scores averaged: seed -> stability.
BAGS: dict[str, int] = {"pyod:cblof": 3}
#: The first member's agreement weight is multiplied by this (see the module docstring): the
#: best ADBench mean among the weights that keep every set within 0.02 of isolation forest.
ANCHOR_WEIGHT = 1.8


class AutoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: Literal["best", "pyod", "sklearn", "core"] = Field(
        "best",
        description="Which detector pool: best = the first installed of pyod, sklearn, core "
        "(pyod's is the strongest on ADBench)",
    )
    anchor_weight: float = Field(
        ANCHOR_WEIGHT,
        gt=0,
        description="Multiplier of the first member's (isolation forest's) agreement weight: "
        "higher stays closer to it, 1 trusts agreement alone",
    )
    jobs: int = Field(
        1,
        description="Members fitted at once; -1 = one per CPU core. 1 (the default) repeats a seeded fit "
        "to the bit: linear algebra run concurrently in threads may round differently, and the "
        "consensus ranks can flip on a last-bit tie",
    )
    max_fit_rows: int = Field(
        MAX_FIT_ROWS,
        ge=100,
        description="Members other than the anchor are fitted on a seeded sample of this many rows "
        "when there are more (every row is still scored by every member)",
    )
    contamination: float = Field(0.1, gt=0, le=0.5, description="Members' contamination (their labels).")
    random_state: int | None = Field(None, description="Seed passed to every member that takes one.")


def _installed(name: str) -> bool:
    """Whether detector ``name`` is registered and its declared needs importable (no import)."""
    from adcore.plugins import get_host

    registration = get_host().registry("detector").get(name)
    return registration is not None and not registration.missing_needs()


def choose_pool(requested: str = "best") -> tuple[str, list[str]]:
    """The pool's name and members: ``requested``, or the first fully installed one."""
    names = list(POOLS) if requested == "best" else [requested]
    for name in names:
        members = list(POOLS[name])
        swap = HIGH_DIM_SWAP.get(name)
        if all(_installed(m) for m in members + ([swap[1]] if swap else [])):
            return name, members
    if requested != "best":
        raise ParameterError(f"pool {requested!r} needs {', '.join(POOLS[requested])}; not all are installed")
    raise ParameterError("no detector pool is installed")  # pragma: no cover - core's is always there


def _fit_one(detector: Any, X: np.ndarray) -> Any:
    """Fit one detector; the exception itself is returned (not raised) so the others go on."""
    try:
        return detector.fit(X)
    except Exception as error:  # any member failure is recorded and that member dropped
        return error


class _Bag:
    """One member made of copies fitted with different seeds: the mean of their standardised scores.

    Each copy is standardised by its own training mean and spread, learned at fit time, so
    new rows are scored on the same scale as the training rows.
    """

    def __init__(self, copies: list[Any]) -> None:
        self.copies = copies
        train = np.column_stack([c.decision_scores_ for c in copies])
        self.mean_ = train.mean(axis=0)
        self.scale_ = np.where(train.std(axis=0) > 0, train.std(axis=0), 1.0)
        self.decision_scores_ = ((train - self.mean_) / self.scale_).mean(axis=1)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raw = np.column_stack([c.decision_function(X) for c in self.copies])
        return ((raw - self.mean_) / self.scale_).mean(axis=1)


@contextmanager
def _library_warnings(reasons: list[str], shown: int = 3) -> Iterator[None]:
    """Record the members' library warnings in ``reasons`` instead of printing them.

    ``auto`` picks its members for the user, so what their libraries say about this data
    (scikit-learn's MCD on a singular covariance repeats one warning per refinement step) is
    part of why it chose as it did: it goes in the reasons (``--explain-choice``, ``--json``),
    counted once per kind, and not as dozens of lines on stderr. Warnings from the member
    threads are caught too: the filter is process-wide while it is active.

    Only on the main thread (the CLI): ``catch_warnings`` swaps process-wide state, and two
    fits overlapping in a server's worker threads would each restore what the other set,
    leaving every later warning recorded into a list nobody reads. There they pass as usual.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    kinds = Counter(f"{w.category.__name__}: {str(w.message).splitlines()[0][:60]}" for w in caught)
    if kinds:
        listed = "; ".join(f"{kind}... (x{count})" for kind, count in kinds.most_common(shown))
        more = f"; and {len(kinds) - shown} other kinds" if len(kinds) > shown else ""
        reasons.append(f"members' libraries warned {len(caught)} times: {listed}{more}")


def _training_scores(member: Any, X: np.ndarray, sample: np.ndarray | None) -> np.ndarray:
    """A member's scores of every training row; ``sample``: the rows it was fitted on, if not all.

    A fitted row keeps its fit-time score: scored again as new data it would count itself
    among its own neighbours (k-nearest-neighbour distance), and score lower than the rest.
    """
    if sample is None:
        return np.asarray(member.decision_scores_, dtype=np.float64)
    scores = np.asarray(member.decision_function(X), dtype=np.float64).copy()
    scores[sample] = member.decision_scores_
    return scores


class AutoDetector:
    """Pick and combine detectors without labels (see the module docstring for the rules).

    Fitted attributes: ``members_`` (fitted adcore Detectors, or bags of them),
    ``member_names_``, ``sample_indices_`` (the rows members after the anchor were fitted
    on, or None for all), ``normalizer_``, ``combiner_``, ``decision_scores_``,
    ``member_scores_`` and ``choice_`` (the reasoning: a JSON-ready dict).
    """

    def __init__(
        self,
        pool: str = "best",
        anchor_weight: float = ANCHOR_WEIGHT,
        jobs: int = 1,
        max_fit_rows: int = MAX_FIT_ROWS,
        contamination: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.pool = pool
        self.anchor_weight = anchor_weight
        self.jobs = jobs
        self.max_fit_rows = max_fit_rows
        self.contamination = contamination
        self.random_state = random_state

    def _plan(self, n_samples: int, n_features: int) -> tuple[str, list[str], list[str]]:
        pool, members = choose_pool(self.pool)
        reasons: list[str] = [
            f"{n_samples} rows x {n_features} features; pool {pool} ({', '.join(members)}): "
            f"the first installed of {', '.join(POOLS)}"
        ]
        swap = HIGH_DIM_SWAP.get(pool)
        if swap and n_features > MAX_MCD_FEATURES and swap[0] in members:
            members[members.index(swap[0])] = swap[1]
            reasons.append(
                f"{n_features} features > {MAX_MCD_FEATURES}: {swap[1]} instead of {swap[0]} "
                "(a robust covariance is slow and noisy in high dimension)"
            )
        return pool, members, reasons

    def _build(self, names: list[str]) -> list[tuple[str, Any]]:
        """(member name, unfitted detector) pairs; a bagged member appears once per seed."""
        from adcore.services.spec import build_detector

        jobs = []
        for name in names:
            copies = BAGS.get(name, 1)
            for copy in range(copies):
                seed = None if self.random_state is None else self.random_state + copy
                params = {"contamination": self.contamination, "random_state": seed}
                jobs.append((name, build_detector(name, params)))
        return jobs

    def fit(self, X: np.ndarray, y: Any = None) -> AutoDetector:
        from adcore.builtin.ensemble import effective_jobs

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 3:
            raise DataError(f"auto needs a 2-D matrix of at least 3 rows, got shape {X.shape}")
        if not self.anchor_weight > 0:
            raise ParameterError(f"anchor_weight must be > 0, got {self.anchor_weight!r}")
        pool, names, reasons = self._plan(*X.shape)
        planned = self._build(names)
        sample = self._sample(X.shape[0], reasons)
        sampled = X if sample is None else X[sample]  # one copy, shared by every member fitted on it
        rows = [X if name == names[0] else sampled for name, _ in planned]
        workers = effective_jobs(self.jobs, len(planned))
        with _library_warnings(reasons):
            dropped = self._fit_members(X, names, planned, rows, workers, sample, reasons)
        kept = self.member_names_
        self.normalizer_ = ScoreNormalizer("zscore").fit(self.member_scores_)
        normalised = self.normalizer_.transform(self.member_scores_)
        self.combiner_ = ScoreCombiner("consensus").fit(normalised)
        self._anchor(kept, names[0], reasons)
        self.decision_scores_ = self.combiner_.combine(normalised)
        self.choice_ = {
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "pool": pool,
            "members": list(kept),
            "weights": [float(w) for w in self.combiner_.weights_],
            "agreement": [float(a) for a in self.combiner_.agreement_],
            "anchor": names[0] if names[0] in kept else None,
            "anchor_weight": float(self.anchor_weight),
            "dropped": dropped,
            "combine": "consensus",
            "reasons": reasons,
        }
        return self

    def _fit_members(
        self,
        X: np.ndarray,
        names: list[str],
        planned: list[tuple[str, Any]],
        rows: list[np.ndarray],
        workers: int,
        sample: np.ndarray | None,
        reasons: list[str],
    ) -> dict[str, str]:
        """Fit the planned detectors, keep those that fit, score every training row; returns
        the members dropped, with why."""
        if workers == 1:
            fitted = [_fit_one(d, rows_) for (_, d), rows_ in zip(planned, rows, strict=True)]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adcore-auto") as executor:
                fitted = list(executor.map(_fit_one, [d for _, d in planned], rows))
        members, kept, dropped = [], [], {}
        for name in names:
            results = [r for (n, _), r in zip(planned, fitted, strict=True) if n == name]
            ok = [r for r in results if not isinstance(r, Exception)]
            if not ok:
                error = results[0]
                dropped[name] = f"{type(error).__name__}: {error}"
                continue
            members.append(_Bag(ok) if BAGS.get(name, 1) > 1 else ok[0])
            kept.append(name)
            if len(ok) > 1:
                reasons.append(f"{name}: mean of {len(ok)} seeds (its result varies with the seed)")
        if len(kept) < 2:
            raise DataError(
                "auto could not fit two detectors on this data: "
                + "; ".join(f"{n}: {why}" for n, why in dropped.items())
            )
        for name, why in dropped.items():
            reasons.append(f"{name} dropped: it failed on this data ({why})")
        self.members_ = members
        self.member_names_ = kept
        self.sample_indices_ = sample
        samples = [None if name == names[0] else sample for name in kept]
        self.member_scores_ = np.column_stack(
            [_training_scores(m, X, rows_) for m, rows_ in zip(members, samples, strict=True)]
        )
        return dropped

    def _sample(self, n_samples: int, reasons: list[str]) -> np.ndarray | None:
        """Sorted row indices the non-anchor members are fitted on, or None for all rows."""
        if self.max_fit_rows < 100:
            raise ParameterError(f"max_fit_rows must be >= 100, got {self.max_fit_rows!r}")
        if n_samples <= self.max_fit_rows:
            return None
        rng = np.random.default_rng(self.random_state)
        reasons.append(
            f"{n_samples} rows > {self.max_fit_rows}: members after the anchor fitted on a random "
            f"sample of {self.max_fit_rows} rows, and score all {n_samples}"
        )
        return np.sort(rng.choice(n_samples, size=self.max_fit_rows, replace=False))

    def _anchor(self, kept: list[str], anchor: str, reasons: list[str]) -> None:
        """Multiply the anchor's agreement weight by ``anchor_weight`` (then renormalise)."""
        weights = np.asarray(self.combiner_.weights_, dtype=np.float64).copy()
        if anchor in kept and self.anchor_weight != 1.0 and weights.sum() > 0:
            weights[kept.index(anchor)] *= self.anchor_weight
            weights /= weights.sum()
            self.combiner_.weights_ = weights
        leader = kept[int(np.argmax(weights))]
        reasons.append(
            "weight = rank agreement with the other members"
            + (
                f", x{self.anchor_weight:g} for {anchor}"
                if anchor in kept and self.anchor_weight != 1.0
                else ""
            )
            + f"; largest: {leader} ({weights.max():.2f}). A row scores as its most extreme weighted member."
        )

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raw = np.column_stack([m.decision_function(X) for m in self.members_])
        return self.combiner_.combine(self.normalizer_.transform(raw))

    def report(self) -> dict[str, Any]:
        """What auto chose and why (``adcore run`` prints it: summary line, --json, --explain-choice)."""
        return {
            "members": list(self.member_names_),
            "normalize": "zscore",
            "combine": "consensus",
            "weights": list(self.choice_["weights"]),
            "choice": dict(self.choice_),
        }
