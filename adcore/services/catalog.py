"""What the installed plugins offer: the algorithm list and each algorithm's parameters.

Kept apart from the detect service so that listing imports neither numpy nor any
plugin's library: ``adcore algos`` is a start-up-time feature.
"""

from __future__ import annotations

from typing import Any


def list_algorithms(*, timeseries: bool = False) -> list[dict[str, Any]]:
    """Every registered detector, in resolution order (core, preferred plugins, alphabetical).

    ``default_for_bare_name`` says whether the entry is what its bare name resolves to.
    ``timeseries=True`` appends the time-series detectors (:func:`list_timeseries_algorithms`):
    off by default because they are not plugin registrations (no parameter schema for
    :func:`describe_algorithm`, which the server and ``adcore.testing`` call on every row).
    """
    from adcore.plugins import get_host

    host = get_host()
    owners = host.bare_name_owners()
    order = {p: i for i, p in enumerate(host.plugin_order())}
    rows = []
    for reg in sorted(host.registry("detector").values(), key=lambda r: (order[r.plugin], r.name)):
        rows.append(
            {
                "name": reg.qualified_name,
                "plugin": reg.plugin,
                "short_name": reg.name,
                "summary": reg.summary,
                "default_for_bare_name": owners.get(reg.name) == reg.qualified_name,
                "needs": list(reg.needs),
                "missing": reg.missing_needs(),
                "tags": list(reg.metadata.get("tags") or ()),
            }
        )
    if timeseries:
        rows.extend(list_timeseries_algorithms())
    return rows


def list_timeseries_algorithms() -> list[dict[str, Any]]:
    """The ``ts:`` detectors (``adcore run/stream/fit --algo ts:NAME --time ...``), same row shape.

    Read from ``TS_DETECTORS``, a dict of strings: listing them imports no detector module.
    """
    from adcore.timeseries.detectors import TS_DETECTORS

    return [
        {
            "name": f"ts:{name}",
            "plugin": "timeseries",
            "short_name": name,
            "summary": summary,
            "default_for_bare_name": False,
            "needs": [],
            "missing": [],
            "tags": ["timeseries"],
        }
        for name, summary in TS_DETECTORS.items()
    ]


def describe_algorithm(name: str) -> dict[str, Any]:
    """One algorithm in full: summary, parameters (type, default, meaning) and JSON Schema."""
    if name.startswith("ts:"):
        return _describe_timeseries(name)
    from adcore.domain.params import describe_fields, json_schema, params_model
    from adcore.plugins import get_host

    reg = get_host().resolve("detector", name)
    model = params_model(reg.qualified_name, reg.metadata.get("params"), reg.load)
    return {
        "name": reg.qualified_name,
        "plugin": reg.plugin,
        "summary": reg.summary,
        "needs": list(reg.needs),
        "missing": reg.missing_needs(),
        "tags": list(reg.metadata.get("tags") or ()),
        "parameters": describe_fields(model),
        "schema": json_schema(model),
        "common_parameters": {
            "contamination": "share of anomalies in (0, 0.5] for the 'contamination' threshold (default 0.1)",
            "threshold": "contamination | mad[:k] | iqr[:k] | zscore[:k] | fixed:VALUE",
            "random_state": "seed (CLI --seed), passed to detectors that take one",
        },
    }


def _describe_timeseries(name: str) -> dict[str, Any]:
    """``adcore algos show ts:NAME``: the summary and the options every ts detector takes."""
    from adcore.timeseries.detectors import TS_DETECTORS, unknown_detector

    key = name.removeprefix("ts:")
    listed = "sub-<detector>" if key.startswith("sub-") and len(key) > 4 else key
    if listed not in TS_DETECTORS:
        raise unknown_detector(name)
    return {
        "name": name,
        "plugin": "timeseries",
        "summary": TS_DETECTORS[listed],
        "needs": [],
        "missing": [],
        "tags": ["timeseries"],
        "parameters": [],
        "schema": {},
        "common_parameters": {
            "--time / --series": "time column (ISO 8601 or epoch), series key: one model each",
            "threshold": "a score in [0, 1] (default 0.5, the anomaly likelihood's alarm level)",
            "warmup": "records each series is fitted on before its first score",
            "likelihood.KEY": "the anomaly likelihood's short, history, block, red, yellow, min_std",
        },
    }
