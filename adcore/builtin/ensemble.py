"""Ensembles: several detectors fitted in parallel, their scores normalised and combined.

An ensemble is an ordinary detector (registered as ``core:ensemble``), so it is wrapped,
stored, scored, explained and streamed like any other; ``--algo iforest,ecod,knn`` is
shorthand for it. What to combine and how is ``adcore.domain.combination``'s job; this module
fits the members in parallel and keeps what scoring new rows needs.

Parallel fits use threads by default. The libraries we wrap (scikit-learn's tree builders
and neighbour searches, numpy, BLAS, torch) release the GIL for the heavy part of a fit,
so k single-threaded members on two cores finish in about half their summed time, with no
worker start-up and no copy of the data (measured in ``benchmarks/ensemble_jobs.py``).
Worker processes (``backend="processes"``, joblib's loky) pay an import of every member's
library per worker, about a second or more; they are for members written in pure Python,
which hold the GIL. Members are started longest-expected first (neighbour-based and deep
models before the rest), so one slow member is not queued behind the quick ones. Deep
members (torch) share one lock: they seed torch's process-global RNG, and concurrent
seeding would make their fits irreproducible; they are multi-threaded inside anyway.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from adcore.domain.combination import (
    COMBINATIONS,
    DEFAULT_COMBINATION,
    DEFAULT_NORMALIZATION,
    NORMALIZATIONS,
    ScoreCombiner,
    ScoreNormalizer,
    Stacker,
    vote,
)
from adcore.errors import ParameterError

LABEL_COMBINATIONS = ("vote", "stack")


class EnsembleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(..., min_length=2, description="Detector names to combine (at least two).")
    normalize: Literal[NORMALIZATIONS] = Field(  # type: ignore[valid-type]
        DEFAULT_NORMALIZATION,
        description="How member scores are put on one scale: " + ", ".join(NORMALIZATIONS),
    )
    combine: Literal[COMBINATIONS + LABEL_COMBINATIONS] = Field(  # type: ignore[valid-type]
        DEFAULT_COMBINATION,
        description="How normalised scores become one: "
        + ", ".join(COMBINATIONS + LABEL_COMBINATIONS)
        + " (vote = majority of member labels; stack = meta-learner, needs labels)",
    )
    weights: list[float] | None = Field(None, description="One weight per member, for combine=weighted.")
    n_buckets: int = Field(5, ge=1, description="Buckets for combine=aom/moa.")
    jobs: int = Field(-1, description="Members fitted at once; -1 = one per CPU core, 1 = one after another.")
    backend: Literal["threads", "processes"] = Field(
        "threads",
        description="Parallel fits in threads (no start-up cost; the wrapped libraries release the GIL) "
        "or worker processes (for pure-Python members; each worker imports their libraries first)",
    )
    member_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Parameters per member: {member name: {key: value}}."
    )
    contamination: float = Field(0.1, gt=0, le=0.5, description="Members' contamination (their labels).")
    random_state: int | None = Field(None, description="Seed passed to every member that takes one.")


#: Tags of members whose fit is expected to be slow (superlinear in rows, or trained
#: networks): they are started first so that the pool's other workers absorb the quick ones.
SLOW_TAGS = ("proximity", "deep", "deep_learning", "kernel", "graph")
#: Tags of members that seed a process-global RNG (torch's): never fitted at the same time.
GLOBAL_RNG_TAGS = ("deep", "deep_learning")
_GLOBAL_RNG_LOCK = threading.Lock()


def _fit_member(member: Any, X: np.ndarray) -> Any:
    """Fit one member (a function, so the pool can map it)."""
    return member.fit(X)


def _member_tags(member: Any) -> set[str]:
    try:
        return set(member._registration().metadata.get("tags") or ())
    except Exception:  # a callable or unregistered member: no hints
        return set()


def _fit_member_in_thread(member: Any, X: np.ndarray) -> Any:
    if _member_tags(member) & set(GLOBAL_RNG_TAGS):
        with _GLOBAL_RNG_LOCK:
            return member.fit(X)
    return member.fit(X)


def fit_order(members: list[Any]) -> list[int]:
    """Indices of ``members``, expected-slowest first (a stable sort: ties keep user order)."""
    slow = [bool(_member_tags(m) & set(SLOW_TAGS)) for m in members]
    return sorted(range(len(members)), key=lambda i: not slow[i])


def fit_members(members: list[Any], X: np.ndarray, jobs: int, backend: str) -> list[Any]:
    """Fit every member on ``X``; returns them in their original order."""
    jobs = effective_jobs(jobs, len(members))
    if jobs == 1:
        return [_fit_member(m, X) for m in members]
    order = fit_order(members)
    if backend == "processes":
        from joblib import Parallel, delayed

        fitted = Parallel(n_jobs=jobs, backend="loky")(delayed(_fit_member)(members[i], X) for i in order)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="adcore-ensemble") as pool:
            futures = [pool.submit(_fit_member_in_thread, members[i], X) for i in order]
            fitted = [f.result() for f in futures]
    result: list[Any] = [None] * len(members)
    for position, index in enumerate(order):
        result[index] = fitted[position]
    return result


def effective_jobs(jobs: int, n_members: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = cores if jobs is None or jobs <= 0 else jobs
    return max(1, min(wanted, n_members))


class Ensemble:
    """Combine the scores of several detectors into one (see :class:`EnsembleParams`).

    Fitted attributes: ``members_`` (fitted adcore Detectors), ``normalizer_``,
    ``combiner_`` (or ``stacker_``), ``decision_scores_`` (training scores of the
    ensemble), ``member_scores_`` (training scores per member, for reports).
    """

    def __init__(
        self,
        members: list[str],
        normalize: str = DEFAULT_NORMALIZATION,
        combine: str = DEFAULT_COMBINATION,
        weights: list[float] | None = None,
        n_buckets: int = 5,
        jobs: int = -1,
        backend: str = "threads",
        member_params: dict[str, dict[str, Any]] | None = None,
        contamination: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.members = members
        self.normalize = normalize
        self.combine = combine
        self.weights = weights
        self.n_buckets = n_buckets
        self.jobs = jobs
        self.backend = backend
        self.member_params = member_params
        self.contamination = contamination
        self.random_state = random_state

    def _build_members(self) -> list[Any]:
        from adcore.domain.detector import Detector
        from adcore.services.spec import build_detector

        member_params = dict(self.member_params or {})
        built = []
        for name in self.members:
            # The ensemble's contamination and seed are each member's defaults; a member's own
            # (iforest.random_state=1) wins.
            params = {
                "contamination": self.contamination,
                "random_state": self.random_state,
                **member_params.pop(name, {}),
            }
            built.append(build_detector(name, params))
        if member_params:
            raise ParameterError(
                f"member_params names {', '.join(sorted(member_params))}, which are not members "
                f"({', '.join(self.members)})"
            )
        names = [d.algorithm_name for d in built]
        if len(set(names)) != len(names):
            raise ParameterError(f"an ensemble's members must differ; got {', '.join(names)}")
        assert all(isinstance(d, Detector) for d in built)
        return built

    def fit(self, X: np.ndarray, y: Any = None) -> Ensemble:
        X = np.asarray(X, dtype=np.float64)
        if self.combine == "stack" and y is None:
            raise ParameterError("combine=stack needs labels: pass y (CLI: --labels COLUMN)")
        members = self._build_members()
        members = fit_members(members, X, self.jobs, self.backend)
        self.members_ = members
        self.member_names_ = [m.algorithm_name for m in members]
        train = np.column_stack([m.decision_scores_ for m in members])
        self.member_scores_ = train
        self.normalizer_ = ScoreNormalizer(self.normalize).fit(train)
        normalised = self.normalizer_.transform(train)
        if self.combine == "stack":
            self.stacker_ = Stacker(random_state=self.random_state).fit(normalised, y)
        elif self.combine != "vote":
            self.combiner_ = ScoreCombiner(
                self.combine, weights=self.weights, n_buckets=self.n_buckets, random_state=self.random_state
            ).fit(normalised)
        self.decision_scores_ = self._combine(normalised, np.column_stack([m.labels_ for m in members]))
        return self

    def _combine(self, normalised: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        if self.combine == "stack":
            return self.stacker_.combine(normalised)
        if self.combine == "vote":
            # Vote share, with the mean normalised score breaking ties inside a vote count
            # (scaled below one vote), so ranking metrics stay meaningful. Majority:
            # --threshold fixed:0.5 (the CLI sets it for combine=vote).
            assert labels is not None
            share = labels.mean(axis=1)
            rank = ScoreNormalizer("rank").fit(self.normalizer_.transform(self.member_scores_))
            tie = rank.transform(normalised).mean(axis=1)
            return share + tie / (labels.shape[1] + 1.0)
        return self.combiner_.combine(normalised)

    def member_matrix(self, X: np.ndarray) -> np.ndarray:
        """Raw scores of every member on ``X``, shape (n_rows, n_members)."""
        return np.column_stack([m.decision_function(X) for m in self.members_])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raw = self.member_matrix(np.asarray(X, dtype=np.float64))
        labels = None
        if self.combine == "vote":
            labels = np.column_stack([(raw[:, j] > m.threshold_) for j, m in enumerate(self.members_)])
            labels = labels.astype(np.int64)
        return self._combine(self.normalizer_.transform(raw), labels)

    def majority(self, X: np.ndarray) -> np.ndarray:
        """Majority vote of the members' own labels (what combine=vote thresholds to)."""
        raw = self.member_matrix(np.asarray(X, dtype=np.float64))
        labels = np.column_stack([(raw[:, j] > m.threshold_) for j, m in enumerate(self.members_)])
        return vote(labels.astype(np.int64))

    def report(self) -> dict[str, Any]:
        """Member names and the weights the combination used (for summaries and docs)."""
        weights = getattr(getattr(self, "combiner_", None), "weights_", None)
        return {
            "members": list(self.member_names_),
            "normalize": self.normalize,
            "combine": self.combine,
            "weights": None if weights is None else [float(w) for w in weights],
        }
