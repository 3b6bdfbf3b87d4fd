"""Which score combination should an ensemble use by default? The evidence behind ``consensus``.

ADBench unsupervised protocol: every member is fitted on all of ``X`` and scores all of
``X``; ROC-AUC against ``y``. Members are PyOD's IForest(random_state=seed), ECOD, COPOD,
HBOS and KNN with default arguments. Their scores are cached per dataset (one ``.npy`` per
member, IForest per seed) so combination ideas can be compared in seconds once the cache
is warm. Every combination sees the score matrix only (no labels); the normalisers and
combiners are fitted on the training scores exactly as the ensemble does at fit time.

Run (about 2.5 minutes on two cores once the member scores are cached, which takes under
a minute the first time; ``--subsets --lscp --holdout`` make it about 7 minutes, plus about
15 the first time for the holdout refits)::

    PYTHONPATH=. python benchmarks/ensemble_research.py \\
        --datasets /work/shared/datasets/adbench --cache /tmp/adcore-ensemble-cache --seeds 0,1,2

``--subsets`` adds every subset of two or more members (what ``--algo a,b`` users get);
``--lscp`` adds an LSCP-style local selection (needs the features, so it is reported as
an alternative, not something the score combiner could do); ``--holdout`` refits the
members on a random 60% of each dataset and scores the other 40% (new data, as in
production).

Output is Markdown: a per-dataset table for the first seed, then per-combination means
for each seed, wins/ties/losses against the best single member, the means when a bad
member is planted (pure noise, or junk that faintly echoes the others), and a
leave-one-dataset-out check of choosing by mean.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adcore.domain.combination import (
    DEFAULT_COMBINATION,
    DEFAULT_NORMALIZATION,
    ScoreCombiner,
    ScoreNormalizer,
)

MEMBERS = ("iforest", "ecod", "copod", "hbos", "knn")
DEFAULT = "consensus"  # the row of the tables that is the shipped default
HOLDOUT_TRAIN = 0.6

# A combination maps (training scores, scores to combine, seed) to one score per row of
# the second matrix; everything it learns comes from the first.
Combination = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


# --------------------------------------------------------------------------- members


def _make_member(name: str, seed: int):
    if name == "iforest":
        from pyod.models.iforest import IForest

        return IForest(random_state=seed)
    if name == "ecod":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "copod":
        from pyod.models.copod import COPOD

        return COPOD()
    if name == "hbos":
        from pyod.models.hbos import HBOS

        return HBOS()
    from pyod.models.knn import KNN

    return KNN()


def load_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(path)
    return data["X"].astype(np.float64), data["y"].astype(np.int64).ravel()


def member_scores(name: str, X: np.ndarray, seed: int, cache: Path) -> np.ndarray:
    """The ``(n, 5)`` matrix of member training scores, computed once and cached as .npy."""
    columns = []
    for member in MEMBERS:
        key = f"{member}_s{seed}" if member == "iforest" else member  # only IForest is random
        path = cache / f"{name}__{key}.npy"
        if not path.exists():
            start = time.perf_counter()
            detector = _make_member(member, seed)
            detector.fit(X)
            np.save(path, np.asarray(detector.decision_scores_, dtype=np.float64))
            print(f"  cached {name} {key} ({time.perf_counter() - start:.1f}s)", file=sys.stderr)
        columns.append(np.load(path))
    return np.column_stack(columns)


def holdout_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = int(HOLDOUT_TRAIN * n)
    return order[:cut], order[cut:]


def holdout_scores(name: str, X: np.ndarray, seed: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Members fitted on the training split: (training scores, scores of the held-out rows)."""
    train, test = holdout_split(len(X), seed)
    path = cache / f"{name}__holdout_s{seed}.npz"
    if not path.exists():
        start = time.perf_counter()
        fit_scores, new_scores = [], []
        for member in MEMBERS:
            detector = _make_member(member, seed)
            detector.fit(X[train])
            fit_scores.append(detector.decision_scores_)
            new_scores.append(detector.decision_function(X[test]))
        np.savez(path, train=np.column_stack(fit_scores), test=np.column_stack(new_scores))
        print(f"  cached {name} holdout s{seed} ({time.perf_counter() - start:.1f}s)", file=sys.stderr)
    data = np.load(path)
    return data["train"], data["test"]


# ---------------------------------------------------------------------- evaluation


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic with tied scores counted half."""
    ranks = _average_ranks(score)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.concatenate(([True], xs[1:] != xs[:-1]))
    starts = np.flatnonzero(new)
    ends = np.concatenate((starts[1:], [len(x)]))
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(new) - 1]
    return ranks


# -------------------------------------------------------------------- combinations


def _normalised(train: np.ndarray, new: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    norm = ScoreNormalizer(method).fit(train)
    return norm.transform(train), norm.transform(new)


def _comb(method: str, normalization: str, **kw) -> Combination:
    def run(train: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
        a, b = _normalised(train, new, normalization)
        options = {"random_state": seed, **kw} if method in ("aom", "moa") else kw
        return ScoreCombiner(method, **options).fit(a).combine(b)

    return run


def _trimmed_rank(train: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
    """Mean rank after dropping each row's lowest and highest member."""
    R = np.sort(_normalised(train, new, "rank")[1], axis=1)
    return R[:, 1:-1].mean(axis=1) if R.shape[1] > 2 else R.mean(axis=1)


def _fisher(train: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
    """Fisher's p-value combination, sum of -log p over members (equal weights)."""
    n = len(train)
    p = (n * (1 - _normalised(train, new, "rank")[1]) + 0.5) / (n + 1)
    return -np.log(p).sum(axis=1)


def _consensus_average(train: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
    """The consensus weights, but averaging ranks instead of the weighted Bonferroni maximum."""
    a, b = _normalised(train, new, "rank")
    return b @ ScoreCombiner("consensus").fit(a).weights_


def _select_central(train: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
    """Unsupervised model selection: the single member that agrees most with the others."""
    a, b = _normalised(train, new, "rank")
    return b[:, int(np.argmax(ScoreCombiner("consensus").fit(a).agreement_))]


def _consensus_variant(weigh: Callable[[np.ndarray, int], np.ndarray]) -> Combination:
    """The default's weighted Bonferroni with other weights: ``weigh(agreement, n_train)``."""

    def run(train: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
        a, b = _normalised(train, new, DEFAULT_NORMALIZATION)
        comb = ScoreCombiner("consensus").fit(a)
        w = weigh(comb.agreement_, len(train))
        comb.weights_ = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
        return comb.combine(b)

    return run


def _significant(agreement: np.ndarray, n: int) -> np.ndarray:
    """Gate: 1 for members whose agreement is 3 null standard errors above 0, else 0."""
    return (agreement > 3.0 / math.sqrt(max(n - 1, 1))).astype(np.float64)


def lscp_local(X: np.ndarray, S: np.ndarray, region: int = 30) -> np.ndarray:
    """LSCP-style local selection (Zhao et al. 2019), simplified and deterministic.

    For each row, its ``region`` nearest training rows (standardised features) form the
    local region; the pseudo ground truth is the average z-scored member score; the
    member whose z-scores correlate best with it over the region scores the row.
    """
    from sklearn.neighbors import NearestNeighbors

    std = X.std(axis=0)
    Xs = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    Z = ScoreNormalizer("zscore").fit_transform(S)
    target = Z.mean(axis=1)
    neighbours = NearestNeighbors(n_neighbors=min(region, len(X))).fit(Xs)
    out = np.empty(len(X))
    for start in range(0, len(X), 5000):
        idx = neighbours.kneighbors(Xs[start : start + 5000], return_distance=False)
        zl = Z[idx] - Z[idx].mean(axis=1, keepdims=True)  # (m, region, k)
        tl = target[idx] - target[idx].mean(axis=1, keepdims=True)  # (m, region)
        num = np.einsum("mrk,mr->mk", zl, tl)
        den = np.sqrt((zl**2).sum(axis=1) * (tl**2).sum(axis=1)[:, None])
        corr = np.divide(num, den, out=np.full_like(num, -np.inf), where=den > 0)
        best = np.argmax(corr, axis=1)
        rows = np.arange(start, start + len(idx))
        out[rows] = Z[rows, best]
    return out


COMBINATIONS: dict[str, Combination] = {
    "avg-rank": _comb("average", "rank"),
    "max-rank": _comb("max", "rank"),
    "med-rank": _comb("median", "rank"),
    "trim-rank": _trimmed_rank,
    "aom2-rank": _comb("aom", "rank", n_buckets=2),
    "moa2-rank": _comb("moa", "rank", n_buckets=2),
    "avg-z": _comb("average", "zscore"),
    "max-z": _comb("max", "zscore"),
    "med-z": _comb("median", "zscore"),
    "aom2-z": _comb("aom", "zscore", n_buckets=2),
    "moa2-z": _comb("moa", "zscore", n_buckets=2),
    "avg-unify": _comb("average", "unify"),
    "max-unify": _comb("max", "unify"),
    "avg-minmax": _comb("average", "minmax"),
    "fisher": _fisher,
    "cons-avg": _consensus_average,
    "select": _select_central,
    "gate": _consensus_variant(_significant),
    "cons^0.5": _consensus_variant(lambda a, n: np.clip(a, 0, None) ** 0.5),
    "cons^2": _consensus_variant(lambda a, n: np.clip(a, 0, None) ** 2),
    DEFAULT: _comb(DEFAULT_COMBINATION, DEFAULT_NORMALIZATION),
}
# The per-dataset table shows these; the summary shows all.
SHOWN = ("avg-rank", "max-rank", "avg-z", "max-z", "cons-avg", DEFAULT)
# Combinations re-run with a planted bad member, and on held-out data.
ROBUSTNESS = ("avg-rank", "max-rank", "avg-z", "max-z", "fisher", "cons-avg", "gate", "cons^0.5", DEFAULT)
# Planted sixth members: pure noise (uniform; exponential, shaped like a distance score)
# and junk that echoes the others faintly (Spearman agreement about 0.2).
PLANTED = ("uniform noise", "exponential noise", "weak junk")


def planted_member(kind: str, S: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    if kind == "uniform noise":
        return rng.random(len(S))
    if kind == "exponential noise":
        return rng.exponential(size=len(S))
    consensus = ScoreNormalizer("rank").fit_transform(S).mean(axis=1)
    echo = (consensus - consensus.mean()) / consensus.std()
    return rng.random(len(S)) + 0.2 * math.sqrt(1 / 12) * echo  # noise sd is sqrt(1/12)


# ------------------------------------------------------------------------ reporting


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    lines += [_row(r) for r in rows]
    return "\n".join(lines)


def _bootstrap_ci(diff: np.ndarray, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, required=True, help="folder of ADBench .npz (X, y)")
    parser.add_argument("--cache", type=Path, required=True, help="folder for cached member scores")
    parser.add_argument("--seeds", default="0,1,2", help="IForest seeds, e.g. 0,1,2 (default)")
    parser.add_argument("--subsets", action="store_true", help="also every subset of >= 2 members")
    parser.add_argument("--lscp", action="store_true", help="also LSCP-style local selection (slower)")
    parser.add_argument("--holdout", action="store_true", help="also fit on 60%% and score the other 40%%")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.replace(" ", ",").split(",") if s]
    args.cache.mkdir(parents=True, exist_ok=True)
    paths = sorted(args.datasets.glob("*.npz"), key=lambda p: (int(p.stem.split("_")[0]), p.stem))
    if not paths:
        parser.error(f"no .npz files in {args.datasets}")
    names = [p.stem for p in paths]

    columns = list(MEMBERS) + list(COMBINATIONS) + (["lscp"] if args.lscp else [])
    auc = {s: {c: [] for c in columns} for s in seeds}  # auc[seed][column] -> per dataset
    planted = {k: {s: {c: [] for c in ROBUSTNESS} for s in seeds} for k in PLANTED}
    held = {s: {c: [] for c in (*MEMBERS, *ROBUSTNESS)} for s in seeds}
    matrices: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for path in paths:
        X, y = load_dataset(path)
        for seed in seeds:
            S = member_scores(path.stem, X, seed, args.cache)
            matrices[(path.stem, seed)] = (S, y)
            for j, member in enumerate(MEMBERS):
                auc[seed][member].append(roc_auc(y, S[:, j]))
            for name, fn in COMBINATIONS.items():
                auc[seed][name].append(roc_auc(y, fn(S, S, seed)))
            if args.lscp:
                auc[seed]["lscp"].append(roc_auc(y, lscp_local(X, S)))
            for kind in PLANTED:
                S_bad = np.column_stack([S, planted_member(kind, S, seed)])
                for name in ROBUSTNESS:
                    planted[kind][seed][name].append(roc_auc(y, COMBINATIONS[name](S_bad, S_bad, seed)))
            if args.holdout:
                train, test = holdout_scores(path.stem, X, seed, args.cache)
                y_test = y[holdout_split(len(X), seed)[1]]
                for j, member in enumerate(MEMBERS):
                    held[seed][member].append(roc_auc(y_test, test[:, j]))
                for name in ROBUSTNESS:
                    held[seed][name].append(roc_auc(y_test, COMBINATIONS[name](train, test, seed)))

    first = seeds[0]
    A = {c: np.array(v) for c, v in auc[first].items()}
    member_means = {m: float(np.mean([np.mean(auc[s][m]) for s in seeds])) for m in MEMBERS}
    best = max(member_means, key=member_means.get)

    print(f"## Per dataset, ROC-AUC (IForest seed {first})\n")
    shown = list(SHOWN) + (["lscp"] if args.lscp else [])
    rows = []
    for i, name in enumerate(names):
        top = max(A[m][i] for m in MEMBERS)
        values = [A[c][i] for c in (*MEMBERS, *shown)]
        rows.append([name] + [f"**{v:.3f}**" if v >= top - 1e-12 else f"{v:.3f}" for v in values])
    rows.append(["**mean**"] + [f"{A[c].mean():.4f}" for c in (*MEMBERS, *shown)])
    print(_table(["dataset", *MEMBERS, *shown], rows))
    print("\n(bold: at least as good as the best member on that dataset)\n")

    def seed_mean(store: dict, c: str) -> float:
        return float(np.mean([np.mean(store[s][c]) for s in seeds]))

    print(f"## Summary over {len(names)} datasets, seeds {seeds} (best single member: {best})\n")
    header = ["combination", *[f"mean s{s}" for s in seeds], "mean", f"W/T/L vs {best}", "worst diff"]
    header += [f"+{k} member" for k in PLANTED]
    rows = []
    for c in columns:
        per_seed = [float(np.mean(auc[s][c])) for s in seeds]
        diffs = np.concatenate([np.array(auc[s][c]) - np.array(auc[s][best]) for s in seeds])
        w, loss = int((diffs > 1e-9).sum()), int((diffs < -1e-9).sum())
        bad = [f"{seed_mean(planted[k], c):.4f}" if c in ROBUSTNESS else "" for k in PLANTED]
        label = f"**{c}** (default)" if c == DEFAULT else c
        cells = [label, *[f"{m:.4f}" for m in per_seed], f"{np.mean(per_seed):.4f}"]
        rows.append([*cells, f"{w}/{len(diffs) - w - loss}/{loss}", f"{diffs.min():+.3f}", *bad])
    print(_table(header, rows))
    print(f"\nW/T/L counts datasets x seeds ({len(names)} x {len(seeds)}).\n")

    diff = np.mean([np.array(auc[s][DEFAULT]) - np.array(auc[s][best]) for s in seeds], axis=0)
    lo, hi = _bootstrap_ci(diff)
    print(
        f"{DEFAULT} - {best}: mean {diff.mean():+.4f} ROC-AUC over datasets (seed-averaged); "
        f"paired bootstrap 95% CI [{lo:+.4f}, {hi:+.4f}]; "
        f"better on {int((diff > 1e-9).sum())}, worse on {int((diff < -1e-9).sum())} of {len(names)}.\n"
    )
    order = np.argsort(-diff)
    print(
        f"Per dataset, {DEFAULT} - {best} (seed-averaged): "
        + ", ".join(f"{names[i]} {diff[i]:+.3f}" for i in order)
    )
    print()

    # Leave one dataset out: choosing the combination with the best mean on the other
    # datasets, how well does that choice do on the held-out one? (Measures how much a
    # "pick the best mean" choice flatters itself on the same datasets.)
    seed_avg = {c: np.mean([auc[s][c] for s in seeds], axis=0) for c in columns}
    lodo, picks = [], set()
    for i in range(len(names)):
        keep = np.arange(len(names)) != i
        pick = max(COMBINATIONS, key=lambda c: seed_avg[c][keep].mean())
        picks.add(pick)
        lodo.append(seed_avg[pick][i])
    print(
        f"Leave-one-dataset-out choice among {len(COMBINATIONS)} combinations by mean: {np.mean(lodo):.4f} "
        f"(picked: {', '.join(sorted(picks))}); {DEFAULT} (no choice made per fold): "
        f"{seed_avg[DEFAULT].mean():.4f}; best member {best}: {seed_avg[best].mean():.4f}.\n"
    )

    if args.holdout:
        print(f"## Held out: members and combiners fitted on {HOLDOUT_TRAIN:.0%}, scoring the rest\n")
        rows = []
        for c in (*MEMBERS, *ROBUSTNESS):
            per_seed = [float(np.mean(held[s][c])) for s in seeds]
            label = f"**{c}** (default)" if c == DEFAULT else c
            rows.append([label, *[f"{m:.4f}" for m in per_seed], f"{np.mean(per_seed):.4f}"])
        print(_table(["combination", *[f"mean s{s}" for s in seeds], "mean"], rows))
        print()
    if args.subsets:
        _subsets(names, seeds, matrices)
    return 0


def _subsets(names: list[str], seeds: list[int], matrices: dict) -> None:
    print("## Every subset of two or more members (seed-averaged means)\n")
    rule = {c: COMBINATIONS[c] for c in ("avg-rank", "max-rank", DEFAULT)}
    rows, wins = [], dict.fromkeys(rule, 0)
    subsets = [s for r in range(2, len(MEMBERS) + 1) for s in itertools.combinations(range(len(MEMBERS)), r)]
    for sub in subsets:
        cols = list(sub)
        member_mean = np.zeros(len(cols))
        res = dict.fromkeys(rule, 0.0)
        for seed in seeds:
            for name in names:
                S, y = matrices[(name, seed)]
                member_mean += [roc_auc(y, S[:, j]) for j in cols]
                for r, fn in rule.items():
                    res[r] += roc_auc(y, fn(S[:, cols], S[:, cols], seed))
        total = len(seeds) * len(names)
        member_mean /= total
        top = float(member_mean.max())
        cells = [
            ",".join(MEMBERS[j] for j in cols),
            f"{top:.4f} ({MEMBERS[cols[int(member_mean.argmax())]]})",
        ]
        for r in rule:
            value = res[r] / total
            wins[r] += value >= top - 1e-12
            cells.append(f"{value:.4f}" + (" *" if value >= top - 1e-12 else ""))
        rows.append(cells)
    print(_table(["members", "best member", *rule], rows))
    counts = ", ".join(f"{r} {w}/{len(subsets)}" for r, w in wins.items())
    print(f"\n(* at least the best member's mean) subsets where the combination >= best member: {counts}\n")


if __name__ == "__main__":
    raise SystemExit(main())
