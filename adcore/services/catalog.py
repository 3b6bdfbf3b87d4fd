"""What the installed plugins offer: the algorithm list and each algorithm's parameters.

Kept apart from the detect service so that listing imports neither numpy nor any
plugin's library: ``adcore algos`` is a start-up-time feature.
"""

from __future__ import annotations

from typing import Any


def list_algorithms() -> list[dict[str, Any]]:
    """Every registered detector, in resolution order (core, preferred plugins, alphabetical).

    ``default_for_bare_name`` says whether the entry is what its bare name resolves to.
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
    return rows


def describe_algorithm(name: str) -> dict[str, Any]:
    """One algorithm in full: summary, parameters (type, default, meaning) and JSON Schema."""
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
