"""Which score combination should an ensemble use by default? The evidence behind ``consensus``.

ADBench unsupervised protocol: every member is fitted on all of ``X`` and scores all of
``X``; ROC-AUC against ``y``. Members are PyOD's IForest(random_state=seed), ECOD, COPOD,
HBOS and KNN with default arguments. Their scores are cached per dataset (one ``.npy`` per
member, IForest per seed) so combination ideas can be compared in seconds once the cache
is warm. Every combination sees the score matrix only (no labels); the normalisers and
combiners are fitted on it exactly as the ensemble does at fit time.

Run (about 1.5 minutes on two cores once the member scores are cached, which takes under
a minute the first time; 4.5 minutes with ``--subsets --lscp``)::

    PYTHONPATH=. python benchmarks/ensemble_research.py \\
        --datasets /work/shared/datasets/adbench --cache /tmp/adcore-ensemble-cache --seeds 0,1,2

``--subsets`` adds every subset of two or more members (what ``--algo a,b`` users get);
``--lscp`` adds an LSCP-style local selection (needs the features, so it is reported as
an alternative, not something the score combiner could do).

Output is Markdown: a per-dataset table for the first seed, then per-combination means
for each seed, wins/ties/losses against the best single member, the mean when a planted
noise member is added, and a leave-one-dataset-out check of choosing by mean.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adcore.combination import ScoreCombiner, ScoreNormalizer

MEMBERS = ("iforest", "ecod", "copod", "hbos", "knn")
DEFAULT = "consensus"


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


def _norm(S: np.ndarray, method: str) -> np.ndarray:
    return ScoreNormalizer(method).fit_transform(S)


def _comb(method: str, normalization: str, **kw) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(S: np.ndarray, seed: int) -> np.ndarray:
        if method in ("aom", "moa"):
            kw.setdefault("random_state", seed)
        return ScoreCombiner(method, **kw).fit_combine(_norm(S, normalization))

    return run


def _trimmed_rank(S: np.ndarray, seed: int) -> np.ndarray:
    """Mean rank after dropping each row's lowest and highest member."""
    R = np.sort(_norm(S, "rank"), axis=1)
    return R[:, 1:-1].mean(axis=1) if R.shape[1] > 2 else R.mean(axis=1)


def _fisher(S: np.ndarray, seed: int) -> np.ndarray:
    """Fisher's p-value combination, sum of -log p over members (equal weights)."""
    n = len(S)
    p = (n * (1 - _norm(S, "rank")) + 0.5) / (n + 1)
    return -np.log(p).sum(axis=1)


def _consensus_average(S: np.ndarray, seed: int) -> np.ndarray:
    """The consensus weights, but averaging ranks instead of taking the weighted maximum."""
    R = _norm(S, "rank")
    return R @ ScoreCombiner("consensus").fit(R).weights_


def _select_central(S: np.ndarray, seed: int) -> np.ndarray:
    """Unsupervised model selection: the single member that agrees most with the others."""
    R = _norm(S, "rank")
    return R[:, int(np.argmax(ScoreCombiner("consensus").fit(R).agreement_))]


def _consensus_power(power: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """Sensitivity check: weighted Bonferroni with weights = agreement ** power (0 = plain max)."""

    def run(S: np.ndarray, seed: int) -> np.ndarray:
        R = _norm(S, "rank")
        agreement = ScoreCombiner("consensus").fit(R).agreement_
        return _wmax(R, np.clip(agreement, 0, None) ** power)

    return run


def _wmax(R: np.ndarray, w: np.ndarray) -> np.ndarray:
    n = len(R)
    p = (n * (1 - R) + 0.5) / (n + 1)
    used = w > 0
    return np.max(np.log(w[used] / w.sum()) - np.log(p[:, used]), axis=1)


def lscp_local(X: np.ndarray, S: np.ndarray, region: int = 30) -> np.ndarray:
    """LSCP-style local selection (Zhao et al. 2019), simplified and deterministic.

    For each row, its ``region`` nearest training rows (standardised features) form the
    local region; the pseudo ground truth is the average z-scored member score; the
    member whose z-scores correlate best with it over the region scores the row.
    """
    from sklearn.neighbors import NearestNeighbors

    std = X.std(axis=0)
    Xs = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    Z = _norm(S, "zscore")
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


COMBINATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
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
    "cons^0.5": _consensus_power(0.5),
    "cons^2": _consensus_power(2.0),
    DEFAULT: _comb("consensus", "rank"),
}
# The per-dataset table shows these; the summary shows all.
SHOWN = ("avg-rank", "max-rank", "avg-z", "max-z", "cons-avg", DEFAULT)
# Combinations re-run with a planted noise member (a sixth column of uniform noise).
NOISE_CHECKED = ("avg-rank", "max-rank", "avg-z", "max-z", "fisher", "cons-avg", "cons^0.5", DEFAULT)


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
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.replace(" ", ",").split(",") if s]
    args.cache.mkdir(parents=True, exist_ok=True)
    paths = sorted(args.datasets.glob("*.npz"), key=lambda p: (int(p.stem.split("_")[0]), p.stem))
    if not paths:
        parser.error(f"no .npz files in {args.datasets}")
    names = [p.stem for p in paths]
    combos = dict(COMBINATIONS)

    # auc[seed][column] -> per-dataset list; noisy[seed][combo] likewise
    columns = list(MEMBERS) + list(combos) + (["lscp"] if args.lscp else [])
    auc = {s: {c: [] for c in columns} for s in seeds}
    noisy = {s: {c: [] for c in NOISE_CHECKED} for s in seeds}
    heavy = {s: {c: [] for c in NOISE_CHECKED} for s in seeds}
    matrices: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for path in paths:
        X, y = load_dataset(path)
        for seed in seeds:
            S = member_scores(path.stem, X, seed, args.cache)
            matrices[(path.stem, seed)] = (S, y)
            for j, member in enumerate(MEMBERS):
                auc[seed][member].append(roc_auc(y, S[:, j]))
            for name, fn in combos.items():
                auc[seed][name].append(roc_auc(y, fn(S, seed)))
            if args.lscp:
                auc[seed]["lscp"].append(roc_auc(y, lscp_local(X, S)))
            # A planted sixth member that is pure noise: uniform, and exponential (shaped
            # like a distance score, whose long tail can win a maximum of z-scores).
            rng = np.random.default_rng(1000 + seed)
            for store, noise in ((noisy, rng.random(len(S))), (heavy, rng.exponential(size=len(S)))):
                S_noise = np.column_stack([S, noise])
                for name in NOISE_CHECKED:
                    store[seed][name].append(roc_auc(y, combos[name](S_noise, seed)))

    first = seeds[0]
    A = {c: np.array(v) for c, v in auc[first].items()}
    member_means = {m: float(np.mean([np.mean(auc[s][m]) for s in seeds])) for m in MEMBERS}
    best = max(member_means, key=member_means.get)

    print(f"## Per dataset, ROC-AUC (IForest seed {first})\n")
    shown = list(SHOWN) + (["lscp"] if args.lscp else [])
    header = ["dataset", *MEMBERS, *shown]
    rows = []
    for i, name in enumerate(names):
        top = max(A[m][i] for m in MEMBERS)
        values = [A[c][i] for c in (*MEMBERS, *shown)]
        rows.append([name] + [f"**{v:.3f}**" if v >= top - 1e-12 else f"{v:.3f}" for v in values])
    rows.append(["**mean**"] + [f"{A[c].mean():.4f}" for c in (*MEMBERS, *shown)])
    print(_table(header, rows))
    print("\n(bold: at least as good as the best member on that dataset)\n")

    print(f"## Summary over {len(names)} datasets, seeds {seeds} (best single member: {best})\n")
    header = ["combination", *[f"mean s{s}" for s in seeds], "mean", f"W/T/L vs {best}", "worst diff"]
    header += ["+uniform noise member", "+exponential noise member"]
    rows = []
    for c in columns:
        per_seed = [float(np.mean(auc[s][c])) for s in seeds]
        diffs = np.concatenate([np.array(auc[s][c]) - np.array(auc[s][best]) for s in seeds])
        w = int((diffs > 1e-9).sum())
        loss = int((diffs < -1e-9).sum())
        wtl = f"{w}/{len(diffs) - w - loss}/{loss}"
        nm = [
            f"{np.mean([np.mean(st[s][c]) for s in seeds]):.4f}" if c in NOISE_CHECKED else ""
            for st in (noisy, heavy)
        ]
        label = f"**{c}** (default)" if c == DEFAULT else c
        rows.append(
            [
                label,
                *[f"{m:.4f}" for m in per_seed],
                f"{np.mean(per_seed):.4f}",
                wtl,
                f"{diffs.min():+.3f}",
                *nm,
            ]
        )
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
    candidates = list(combos)
    seed_avg = {c: np.mean([auc[s][c] for s in seeds], axis=0) for c in columns}
    held = []
    for i in range(len(names)):
        keep = np.arange(len(names)) != i
        pick = max(candidates, key=lambda c: seed_avg[c][keep].mean())
        held.append(seed_avg[pick][i])
    print(
        f"Leave-one-dataset-out choice among {len(candidates)} combinations by mean: "
        f"{np.mean(held):.4f}; {DEFAULT} (no choice made per fold): {seed_avg[DEFAULT].mean():.4f}; "
        f"best member {best}: {seed_avg[best].mean():.4f}.\n"
    )

    if args.subsets:
        _subsets(names, seeds, matrices)
    return 0


def _subsets(names: list[str], seeds: list[int], matrices: dict) -> None:
    print("## Every subset of two or more members (seed-averaged means)\n")
    rule = {
        "avg-rank": COMBINATIONS["avg-rank"],
        "max-rank": COMBINATIONS["max-rank"],
        DEFAULT: COMBINATIONS[DEFAULT],
    }
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
                    res[r] += roc_auc(y, fn(S[:, cols], seed))
        total = len(seeds) * len(names)
        member_mean /= total
        best = float(member_mean.max())
        cells = [
            ",".join(MEMBERS[j] for j in cols),
            f"{best:.4f} ({MEMBERS[cols[int(member_mean.argmax())]]})",
        ]
        for r in rule:
            value = res[r] / total
            wins[r] += value >= best - 1e-12
            cells.append(f"{value:.4f}" + (" *" if value >= best - 1e-12 else ""))
        rows.append(cells)
    print(_table(["members", "best member", *rule], rows))
    counts = ", ".join(f"{r} {w}/{len(subsets)}" for r, w in wins.items())
    print(f"\n(* at least the best member's mean) subsets where the combination >= best member: {counts}\n")


if __name__ == "__main__":
    raise SystemExit(main())
