"""ADBench-style synthetic anomalies of four kinds, for checking detector choice on unseen data.

ADBench (Han et al., 2022, section 3.3) plants four kinds of anomalies in data drawn from a
Gaussian mixture: *local* (the mixture with inflated covariances), *global* (uniform in a
slightly enlarged bounding box), *dependency* (each feature drawn from its normal marginal,
independently, so only the correlations are broken) and *clustered* (the mixture with its
means pushed away). This module re-implements that recipe from the description, with our
own random mixtures and seeds, numpy only, so that ``core:auto`` can be evaluated on tasks
it was never tuned on (``benchmarks/auto_select.py``, ``tests/test_auto_detector.py``).
"""

from __future__ import annotations

import numpy as np

from adcore.errors import ParameterError

ANOMALY_TYPES = ("local", "global", "dependency", "clustered")
#: ADBench's scale factors: covariance inflation for local anomalies, mean scaling for
#: clustered ones, and the bounding-box enlargement for global ones.
LOCAL_SCALE = 5.0
CLUSTER_SCALE = 5.0
GLOBAL_BOX = 1.1


def _mixture(rng: np.random.Generator, n_features: int, n_components: int) -> tuple[np.ndarray, list]:
    """Random means and correlated covariances (so dependency anomalies have something to break)."""
    means = rng.normal(0.0, 2.0, size=(n_components, n_features))
    covs = []
    for _ in range(n_components):
        # A few latent factors make the features strongly correlated; the diagonal keeps it SPD.
        factors = rng.normal(size=(n_features, max(1, n_features // 3)))
        cov = factors @ factors.T + np.diag(rng.uniform(0.05, 0.3, size=n_features))
        scale = np.sqrt(np.diag(cov))
        covs.append(cov / np.outer(scale, scale))
    return means, covs


def _draw(
    rng: np.random.Generator,
    n: int,
    means: np.ndarray,
    covs: list,
    weights: np.ndarray,
    cov_scale: float = 1.0,
) -> np.ndarray:
    component = rng.choice(len(means), size=n, p=weights)
    out = np.empty((n, means.shape[1]))
    for k in range(len(means)):
        rows = component == k
        out[rows] = rng.multivariate_normal(means[k], covs[k] * cov_scale, size=int(rows.sum()))
    return out


def make_anomalies(
    kind: str,
    *,
    n_samples: int = 2000,
    n_features: int = 8,
    n_components: int = 3,
    contamination: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``X`` and labels ``y`` (1 = anomaly) with anomalies of one ADBench ``kind``.

    Every feature of the normal data is correlated with others, and the mixture's components
    overlap little, so each kind favours a different family of detectors (local: density
    ratios; global: any; dependency: covariance-aware; clustered: isolation).
    """
    if kind not in ANOMALY_TYPES:
        raise ParameterError(f"unknown anomaly kind {kind!r}; choose one of: {', '.join(ANOMALY_TYPES)}")
    if not 0 < contamination < 0.5:
        raise ParameterError(f"contamination must be in (0, 0.5), got {contamination}")
    rng = np.random.default_rng(seed)
    means, covs = _mixture(rng, n_features, n_components)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    n_anomalies = max(1, round(n_samples * contamination))
    normal = _draw(rng, n_samples - n_anomalies, means, covs, weights)
    if kind == "local":
        anomalies = _draw(rng, n_anomalies, means, covs, weights, cov_scale=LOCAL_SCALE)
    elif kind == "clustered":
        anomalies = _draw(rng, n_anomalies, means * CLUSTER_SCALE, covs, weights)
    elif kind == "global":
        low, high = normal.min(axis=0), normal.max(axis=0)
        centre, half = (low + high) / 2, (high - low) / 2 * GLOBAL_BOX
        anomalies = rng.uniform(centre - half, centre + half, size=(n_anomalies, n_features))
    else:  # dependency: every feature from its own normal marginal, drawn independently
        pool = _draw(rng, n_anomalies * n_features, means, covs, weights)
        picks = rng.integers(0, len(pool), size=(n_anomalies, n_features))
        anomalies = pool[picks, np.arange(n_features)]
    X = np.vstack([normal, anomalies])
    y = np.r_[np.zeros(len(normal), dtype=np.int64), np.ones(n_anomalies, dtype=np.int64)]
    order = rng.permutation(len(X))
    return X[order], y[order]
