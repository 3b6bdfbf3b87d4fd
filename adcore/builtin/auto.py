"""``core:auto``: a label-free choice of detectors from the data, combined by agreement.

Users should not have to know which detector suits their data. ``auto`` fits a small pool
of detectors from different families, so that some member sees whatever kind of anomaly
the data holds (isolation for scattered global anomalies, k-nearest-neighbour distance for
local ones, a robust covariance for broken dependencies, cluster-based distances for
multi-modal data), and combines them with adcore's ``consensus`` (each member's tail
probability, weighted by how well it agrees with the others: see
:mod:`adcore.domain.combination`). No labels are used anywhere.

The pool and the rules below were chosen by looking at 16 ADBench datasets, so their
figures there are in-sample; ``benchmarks/auto_select.py`` also reports the honest
leave-one-dataset-out figure (a pool re-chosen on 15 datasets by mean rank, scored on the
16th), and generated data of ADBench's four anomaly types that chose nothing. What the
data decides, from its shape alone:

- a robust covariance (MCD) needs many more rows than features and costs ``O(d^3)`` per
  step: past :data:`MAX_MCD_FEATURES` features it is replaced by PCA's reconstruction
  error, the other covariance-aware member;
- a member that fails on this data (CBLOF cannot always separate large and small
  clusters) is dropped, and the reason recorded, as long as two members remain;
- without PyOD, the pool falls back to scikit-learn's, then to numpy-only detectors.

Two fixed design choices make it steadier: CBLOF's k-means start varies a lot with the
seed (ROC-AUC 0.66 to 0.95 on one ADBench set), so it is fitted with :data:`BAGS` seeds and
their standardised scores averaged; and the pool's first member (isolation forest, the
best single detector on ADBench) keeps :data:`ANCHOR_WEIGHT` times its agreement weight,
which keeps ``auto`` close to it where the other members are all weak (the trade-off is
tabulated in ``benchmarks/auto_select.py``).

Everything ``auto`` decided is in ``choice_`` (and in :meth:`report`, which ``adcore run
--json`` and ``--explain-choice`` print): the data's shape, the pool used, members dropped
and why, and each member's agreement weight.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
#: Members fitted with several seeds, their standardised scores averaged: seed -> stability.
BAGS: dict[str, int] = {"pyod:cblof": 3}
#: The first member's agreement weight is multiplied by this (see the module docstring).
ANCHOR_WEIGHT = 1.5


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


class AutoDetector:
    """Pick and combine detectors without labels (see the module docstring for the rules).

    Fitted attributes: ``members_`` (fitted adcore Detectors, or bags of them),
    ``member_names_``, ``normalizer_``, ``combiner_``, ``decision_scores_``,
    ``member_scores_`` and ``choice_`` (the reasoning: a JSON-ready dict).
    """

    def __init__(
        self,
        pool: str = "best",
        anchor_weight: float = ANCHOR_WEIGHT,
        jobs: int = 1,
        contamination: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.pool = pool
        self.anchor_weight = anchor_weight
        self.jobs = jobs
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
        workers = effective_jobs(self.jobs, len(planned))
        if workers == 1:
            fitted = [_fit_one(d, X) for _, d in planned]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adcore-auto") as executor:
                fitted = list(executor.map(_fit_one, [d for _, d in planned], [X] * len(planned)))
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
        self.member_scores_ = np.column_stack([m.decision_scores_ for m in members])
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
