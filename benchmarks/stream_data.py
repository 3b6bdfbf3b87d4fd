"""Labelled streams for online detectors: anomaly types crossed with kinds of drift.

Every stream is unscaled on purpose (each feature gets its own unit, from 0.01 to 1,000, and
its own offset), as a real stream is, and its normal records are correlated: they live near
a low-dimensional latent space, so that anomalies which break dependencies between features
(every value ordinary, the combination not) are detectable at all.

Anomaly types (``y = 1``, about ``rate`` of the records):

- ``point``: a normal record pushed 4 to 7 standard deviations along a random direction;
- ``dependency``: about half the features of a normal record replaced by those of another
  normal record, the most different of 20 (each marginal normal, the joint not);
- ``contextual``: records carry a cyclic phase (two features, sin and cos of the time of
  day) and the anomaly takes the value of the opposite phase: normal elsewhere in the cycle,
  abnormal at its own time;
- ``collective``: bursts of 10 consecutive records from a small cluster away from the data.

Drifts: ``none``; ``mean_shift`` (at mid-stream every feature moves by 3 standard deviations);
``variance`` (at mid-stream the spread grows 3-fold); ``rotation`` (the latent directions
rotate steadily, a full quarter turn over the stream); ``gradual`` (the mean drifts linearly
by 4 standard deviations over the stream).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANOMALIES = ("point", "dependency", "contextual", "collective")
DRIFTS = ("none", "mean_shift", "variance", "rotation", "gradual")


@dataclass(frozen=True)
class Stream:
    name: str
    X: np.ndarray
    y: np.ndarray
    drift: str
    anomaly: str


def _orthonormal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def make_stream(
    anomaly: str,
    drift: str,
    *,
    n: int = 20_000,
    d: int = 10,
    rate: float = 0.01,
    seed: int = 0,
) -> Stream:
    """One labelled stream of ``n`` records and ``d`` features (see the module docstring)."""
    if anomaly not in ANOMALIES or drift not in DRIFTS:
        raise ValueError(f"unknown anomaly {anomaly!r} or drift {drift!r}")
    rng = np.random.default_rng(seed)
    latent_dim = max(2, d // 4)
    t = np.arange(n) / n
    contextual = anomaly == "contextual"
    core_d = d - 2 if contextual else d
    # normal records: latent factors through a random linear map, plus small noise
    basis = rng.normal(size=(latent_dim, core_d)) / np.sqrt(latent_dim)
    latent = rng.normal(size=(n, latent_dim))
    if contextual:  # the latent mean follows the phase of a daily cycle
        phase = 2 * np.pi * (np.arange(n) % 500) / 500
        latent[:, 0] += 2.5 * np.sin(phase)
        latent[:, 1] += 2.5 * np.cos(phase)
    if drift == "rotation":
        spin = _orthonormal(rng, core_d)
        angle = (np.pi / 2) * t
        core = latent @ basis
        # rotate each record in the plane of the first two directions of `spin`, by its angle
        u, v = spin[0], spin[1]
        a, b = core @ u, core @ v
        core = core + np.outer(a * (np.cos(angle) - 1) - b * np.sin(angle), u)
        core = core + np.outer(a * np.sin(angle) + b * (np.cos(angle) - 1), v)
    else:
        core = latent @ basis
    core = core + 0.15 * rng.normal(size=(n, core_d))
    std = core.std(axis=0)
    if drift == "mean_shift":
        core[n // 2 :] += 3.0 * std * rng.choice([-1.0, 1.0], size=core_d)
    elif drift == "variance":
        mean = core.mean(axis=0)
        core[n // 2 :] = mean + 3.0 * (core[n // 2 :] - mean)
    elif drift == "gradual":
        core += np.outer(t, 4.0 * std * rng.choice([-1.0, 1.0], size=core_d))
    y = np.zeros(n, dtype=np.int64)
    candidates = np.arange(n // 50, n)  # a clean start, as any stream might have
    if anomaly == "collective":
        n_bursts = max(1, round(rate * n / 10))
        starts = np.sort(rng.choice(candidates[:-10] // 10 * 10, size=n_bursts, replace=False))
        centre_dir = rng.normal(size=core_d)
        centre_dir /= np.linalg.norm(centre_dir)
        for start in starts:
            rows = np.arange(start, start + 10)
            local = core[start - 1] if start else core.mean(axis=0)
            centre = local + 5.0 * std * centre_dir * np.sqrt(core_d)
            core[rows] = centre + 0.1 * std * rng.normal(size=(10, core_d))
            y[rows] = 1
    else:
        rows = np.sort(rng.choice(candidates, size=max(1, round(rate * n)), replace=False))
        y[rows] = 1
        if anomaly == "point":
            direction = rng.normal(size=(len(rows), core_d))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            core[rows] += direction * rng.uniform(4.0, 7.0, size=(len(rows), 1)) * std * np.sqrt(core_d) / 2
        elif anomaly == "dependency":
            for row in rows:
                # the donor: of 20 records 50 to 500 away, the one most unlike this one on the
                # swapped features, so that the combination is clearly off the data's manifold
                offsets = rng.integers(50, 500, size=20)
                donors = np.where(row > 500, row - offsets, np.minimum(row + offsets, n - 1))
                swap = rng.random(core_d) < 0.5
                swap[rng.integers(core_d)] = True
                gaps = np.abs((core[donors][:, swap] - core[row, swap]) / std[swap]).sum(axis=1)
                core[row, swap] = core[donors[np.argmax(gaps)], swap]
    if contextual:
        cycle = np.column_stack([np.sin(phase), np.cos(phase)])
        anomalous = y == 1
        cycle[anomalous] *= -1.0  # the value of the opposite phase: normal at another time
        core = np.column_stack([core, cycle])
    units = 10.0 ** rng.uniform(-2, 3, size=d)
    offsets = rng.normal(size=d) * units * 10
    X = core * units + offsets
    return Stream(f"{anomaly}/{drift}/d{d}", np.ascontiguousarray(X), y, drift, anomaly)


#: The generated suite: (anomaly, drift, features). Drifting ones decide the default.
SUITE = (
    ("point", "none", 10),
    ("dependency", "none", 10),
    ("contextual", "none", 8),
    ("collective", "none", 20),
    ("point", "mean_shift", 10),
    ("dependency", "mean_shift", 20),
    ("point", "variance", 20),
    ("point", "rotation", 10),
    ("dependency", "rotation", 5),
    ("point", "gradual", 50),
    ("contextual", "gradual", 12),
    ("point", "mean_shift", 100),
)


def generated_suite(n: int = 20_000, seed: int = 2026) -> list[Stream]:
    """Every stream of :data:`SUITE`, each with its own seed derived from ``seed``."""
    return [make_stream(a, dr, n=n, d=d, seed=seed + i) for i, (a, dr, d) in enumerate(SUITE)]


def adbench_stream(path: str, seed: int = 0, limit: int | None = None) -> Stream:
    """An ADBench ``.npz`` (X, y) replayed as a stream: rows shuffled with a fixed seed."""
    data = np.load(path)
    X, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    if limit is not None:
        order = order[:limit]
    name = path.rsplit("/", 1)[-1].removesuffix(".npz")
    return Stream(f"adbench/{name}", np.ascontiguousarray(X[order]), y[order], "none", "real")
