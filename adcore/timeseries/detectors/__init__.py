"""Causal time-series detectors, one model per series, scored point by point.

Each name below builds a :class:`~adcore.timeseries.detectors.base.TimeSeriesDetector`;
``auto`` is the default chosen on the NAB benchmark (``benchmarks/nab_detectors.py``).
Importing this package imports numpy only: the detectors' modules load when one is built.

=================  ===========================================================================
``auto``           ``discord`` + ``seasonal`` + ``extreme``, scores combined by max (the
                   NAB-chosen default; ``period``/``min_acf`` go to seasonal, ``tolerance``
                   to extreme, other parameters to discord)
``discord``        left nearest-neighbour distance of the last 8 values (matrix-profile discord)
                   through the anomaly likelihood
``gaussian``       rolling z-score against the last 288 values, through the likelihood
``seasonal``       distance from the same time on the previous days (period detected or
                   declared), through the likelihood
``spectral``       spectral residual saliency (Ren et al. 2019), through the likelihood
``sub-<det>``      any registered tabular detector on sliding windows (``sub-core:mad``),
                   through the likelihood
``extreme``        1 for a value beyond all earlier ones by 5% of their range (HTM's check)
=================  ===========================================================================
"""

from __future__ import annotations

from typing import Any

from adcore.errors import ParameterError, UnknownAlgorithmError

#: name -> one-line summary (``adcore algos``-style listing without importing a detector)
TS_DETECTORS: dict[str, str] = {
    "auto": "discord + seasonal + new-extreme check, max of their scores (chosen on NAB)",
    "discord": "matrix-profile discord (left nearest-neighbour distance, L=8) + anomaly likelihood",
    "gaussian": "rolling z-score against the last 288 values + anomaly likelihood",
    "seasonal": "distance from the same time on the previous 3 days (period detected) + anomaly likelihood",
    "spectral": "spectral residual saliency (Ren et al. 2019) + anomaly likelihood",
    "sub-<detector>": "a tabular detector on sliding windows (e.g. sub-core:mad) + anomaly likelihood",
    "extreme": "1 when a value exceeds every earlier one by 5% of their range (HTM's spatial check)",
}
#: The NAB-optimised threshold of ``auto`` is about 0.51 (standard profile): 0.5 is the
#: likelihood's own alarm level (tail probability 1e-5) and the default label threshold.
DEFAULT_THRESHOLD = 0.5


def unknown_detector(name: str) -> UnknownAlgorithmError:
    """The one-line error for a name that is no time-series detector (CLI exit 2, HTTP 404)."""
    names = ", ".join("ts:" + n for n in TS_DETECTORS)
    return UnknownAlgorithmError(
        f"unknown time-series detector {name!r}; one of {names} (adcore algos lists them)"
    )


_LIKELIHOOD_KEYS = ("short", "history", "block", "red", "yellow", "min_std")


def _split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``likelihood.KEY`` parameters go to the post-processor, the others to the raw scorer."""
    raw, post = {}, {}
    for key, value in params.items():
        if key.startswith("likelihood."):
            name = key.split(".", 1)[1]
            if name not in _LIKELIHOOD_KEYS:
                raise ParameterError(
                    f"unknown likelihood parameter {name!r}; one of {', '.join(_LIKELIHOOD_KEYS)}"
                )
            post[name] = value
        else:
            raw[key] = value
    return raw, post


def _with_likelihood(raw_scorer: Any, post: dict[str, Any], name: str) -> Any:
    from adcore.timeseries.detectors.base import CausalDetector
    from adcore.timeseries.detectors.likelihood import AnomalyLikelihood

    return CausalDetector(raw_scorer, AnomalyLikelihood(**post), name=name)


def _raw(cls: Any, params: dict[str, Any], name: str) -> Any:
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParameterError(f"ts:{name}: {exc}") from None


def build_ts_detector(name: str, /, **params: Any) -> Any:
    """A fresh, unfitted time-series detector by name (``auto``, ``discord``, ``sub-core:mad``...).

    ``ts:`` in front of the name is accepted. Parameters go to the raw scorer;
    ``likelihood.KEY`` to the anomaly likelihood.
    """
    key = name.removeprefix("ts:")
    raw, post = _split(dict(params))
    if key == "auto":
        from adcore.timeseries.detectors.ensemble import Ensemble
        from adcore.timeseries.detectors.extreme import NewExtreme

        tolerance = raw.pop("tolerance", 0.05)
        seasonal = {k: raw.pop(k) for k in ("period", "min_acf") if k in raw}
        likelihood = {f"likelihood.{k}": v for k, v in post.items()}
        members = [
            build_ts_detector("discord", **raw, **likelihood),
            build_ts_detector("seasonal", **seasonal, **likelihood),
            NewExtreme(tolerance=tolerance),
        ]
        ensemble = Ensemble(members, combine="max")
        ensemble.name = "ts:auto"
        return ensemble
    if key == "discord":
        from adcore.timeseries.detectors.discord import Discord

        return _with_likelihood(_raw(Discord, raw, key), post, "ts:discord")
    if key == "gaussian":
        from adcore.timeseries.detectors.gaussian import RollingGaussian

        return _with_likelihood(_raw(RollingGaussian, raw, key), post, "ts:gaussian")
    if key == "seasonal":
        from adcore.timeseries.detectors.seasonal import SeasonalResidual

        return _with_likelihood(_raw(SeasonalResidual, raw, key), post, "ts:seasonal")
    if key == "spectral":
        from adcore.timeseries.detectors.spectral import SpectralResidual

        return _with_likelihood(_raw(SpectralResidual, raw, key), post, "ts:spectral")
    if key.startswith("sub-") and len(key) > 4:
        from adcore.timeseries.detectors.subsequence import Subsequence

        options = {k: raw.pop(k) for k in ("length", "diff", "normalize") if k in raw}
        scorer = Subsequence(key[4:], params=raw, **options)
        return _with_likelihood(scorer, post, f"ts:{key}")
    if key == "extreme":
        from adcore.timeseries.detectors.extreme import NewExtreme

        if post:
            raise ParameterError("ts:extreme has no likelihood")
        return _raw(NewExtreme, raw, key)
    raise unknown_detector(name)
