"""False alerts that ``--min-anomalies K --within N`` and ``--suppress R`` remove, at equal recall, on NAB.

Each NAB series (``<datasets>/data/<category>/*.csv``, the label windows of
``labels/combined_windows.json``) is replayed through ``adcore.open_stream`` as records
``{"value", "delta"}`` (the value and its change since the previous record), scored by the
stream's default online detector (``core:rshash``, seed 0) with its causal threshold at each
``--contamination`` level. Every labelled record is an ``anomaly.detected`` event: the baseline,
as a stream without the rule pages. The rule (:class:`adcore.services.streaming.alert_rule.AlertRule`,
the code the stream runs) then keeps the events it passes; one configuration is also run
through the stream itself, and must give the same events.

Counting, per configuration and contamination level, over all series:

- a label window is *caught* when at least one alert falls inside it; recall = caught / windows;
- a *false alert* is an alert outside every window (series without windows: all of them).

"At equal recall": for every recall the baseline reaches (one per contamination level), each
rule's fewest false alerts over the levels where it reaches at least that recall.

Usage::

    python benchmarks/alert_rules.py --datasets ../shared/datasets/nab --json alert_rules.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_machine import load_average, machine  # noqa: E402

import adcore  # noqa: E402
from adcore.services.streaming.alert_rule import AlertRule  # noqa: E402

CONTAMINATIONS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
#: (K, N, R): K anomalous of the last N records, then R records of suppression.
RULES = ((1, 1, 0), (2, 3, 0), (3, 5, 0), (3, 10, 0), (5, 10, 0), (1, 1, 100), (2, 3, 100), (3, 10, 100))
CHECKED_RULE = (3, 10, 100)  # run through the stream itself too


def load_series(root: Path) -> list[dict[str, Any]]:
    """Every series: name, values, timestamps and its label windows as record index ranges."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    out = []
    for path in sorted((root / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        with path.open() as f:
            rows = list(csv.DictReader(f))
        stamps = np.array([r["timestamp"] for r in rows], dtype="datetime64[s]")
        values = np.array([float(r["value"]) for r in rows])
        ranges = []
        for start, end in windows.get(name, []):
            lo, hi = np.datetime64(start[:19], "s"), np.datetime64(end[:19], "s")
            inside = np.flatnonzero((stamps >= lo) & (stamps <= hi))
            if inside.size:
                ranges.append((int(inside[0]), int(inside[-1])))
        out.append({"name": name, "values": values, "windows": ranges})
    return out


def records(values: np.ndarray) -> list[dict[str, float]]:
    delta = np.diff(values, prepend=values[0])
    return [
        {"id": i, "value": float(v), "delta": float(d)}
        for i, (v, d) in enumerate(zip(values, delta, strict=True))
    ]


def stream_labels(
    values: np.ndarray, contamination: float, rule: tuple[int, int, int] = (1, 1, 0)
) -> tuple[np.ndarray, list[int]]:
    """The stream's per-record labels (0/1, warm-up 0) and the offsets of its anomaly events."""
    out: list[dict[str, Any]] = []
    events: list[Any] = []
    k, n, r = rule
    with adcore.open_stream(
        records(values), out, subscribers=[events.append], seed=0, contamination=contamination,
        min_anomalies=k, within=n, suppress=r, report=lambda _: None,
    ) as s:  # fmt: skip
        s.run()
    labels = np.array([1 if rec.get("label") == 1 else 0 for rec in out], dtype=np.int64)
    return labels, sorted(e.offset for e in events if e.type == "anomaly.detected")


def apply_rule(labels: np.ndarray, rule: tuple[int, int, int]) -> list[int]:
    k, n, r = rule
    gate = AlertRule(k, n, r)
    flagged = np.flatnonzero(labels).tolist()
    return sorted(gate.observe(None, labels.astype(bool).tolist(), flagged) + gate.close())


def count(alerts: list[int], windows: list[tuple[int, int]]) -> tuple[int, int]:
    """(windows caught, false alerts)."""
    a = np.asarray(alerts, dtype=np.int64)
    caught, inside = 0, np.zeros(a.shape[0], dtype=bool)
    for lo, hi in windows:
        hit = (a >= lo) & (a <= hi)
        caught += int(hit.any())
        inside |= hit
    return caught, int((~inside).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(REPO.parent / "shared" / "datasets" / "nab"))
    parser.add_argument("--json", default=None, help="Write the results here.")
    parser.add_argument("--quick", action="store_true", help="Five series, three levels (a smoke run).")
    args = parser.parse_args()
    load_before = load_average()
    started = time.perf_counter()
    series = load_series(Path(args.datasets))
    levels = CONTAMINATIONS
    if args.quick:
        series, levels = series[::7], (0.005, 0.02, 0.1)
    n_windows = sum(len(s["windows"]) for s in series)
    table: dict[str, list[dict[str, Any]]] = {}
    checked = True
    for c in levels:
        totals = {rule: [0, 0, 0] for rule in RULES}  # caught, false, alerts
        for s in series:
            labels, events = stream_labels(s["values"], c)
            assert events == np.flatnonzero(labels).tolist(), s["name"]  # the baseline is every label
            for rule in RULES:
                alerts = apply_rule(labels, rule)
                caught, false = count(alerts, s["windows"])
                totals[rule][0] += caught
                totals[rule][1] += false
                totals[rule][2] += len(alerts)
            if s is series[0]:  # the stream's own gating gives the events computed here
                _, gated = stream_labels(s["values"], c, CHECKED_RULE)
                checked &= gated == apply_rule(labels, CHECKED_RULE)
        for rule, (caught, false, alerts) in totals.items():
            table.setdefault(_name(rule), []).append(
                {
                    "contamination": c,
                    "recall": caught / max(n_windows, 1),
                    "false_alerts": false,
                    "alerts": alerts,
                }
            )
    summary = equal_recall(table)
    _print(table, summary, n_windows, len(series), checked)
    result = {
        "benchmark": "alert_rules",
        "detector": "core:rshash (seed 0), features value and delta, causal contamination threshold",
        "series": len(series),
        "windows": n_windows,
        "rules": table,
        "at_equal_recall": summary,
        "stream_matches_offline_rule": checked,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(load_before, adcore=adcore.__version__),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def _name(rule: tuple[int, int, int]) -> str:
    k, n, r = rule
    text = "every anomaly" if (k, n) == (1, 1) else f"{k} of {n}"
    return text + (f", suppress {r}" if r else "")


def equal_recall(table: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per baseline recall, each rule's fewest false alerts among the levels reaching it."""
    base = table[_name((1, 1, 0))]
    out = []
    for point in base:
        row: dict[str, Any] = {"recall": point["recall"], "baseline_false_alerts": point["false_alerts"]}
        for name, points in table.items():
            reaching = [p["false_alerts"] for p in points if p["recall"] >= point["recall"] - 1e-12]
            row[name] = min(reaching) if reaching else None
        out.append(row)
    return out


def _print(
    table: dict[str, list[dict[str, Any]]], summary: list[dict[str, Any]], windows: int, n: int, checked: bool
) -> None:
    print(f"NAB: {n} series, {windows} label windows; recall / false alerts per contamination level")
    levels = [p["contamination"] for p in next(iter(table.values()))]
    print(f"{'rule':<26}" + "".join(f"{c:>14g}" for c in levels))
    for name, points in table.items():
        print(f"{name:<26}" + "".join(f"{p['recall']:>7.2f} {p['false_alerts']:>6d}" for p in points))
    print("\nfalse alerts at equal recall (fewest over the levels reaching the baseline's recall)")
    names = list(table)
    print(f"{'recall':>7}" + "".join(f"{n[:16]:>18}" for n in names))
    for row in summary:
        cells = "".join(f"{'-' if row[n] is None else row[n]:>18}" for n in names)
        print(f"{row['recall']:>7.2f}" + cells)
    print(f"\nthe stream's own gating matches the offline rule: {checked}")


if __name__ == "__main__":
    main()
