"""``adcore run``: fit a detector on a file and write one score and label per row."""

from __future__ import annotations

from typing import Any

import typer

from adcore.cli import options
from adcore.cli.console import print_json, stderr_console


def build_detector(
    algo: str,
    params: list[str] | None,
    contamination: float | None,
    threshold: str | None,
    seed: int | None,
    ensemble: dict[str, Any] | None = None,
) -> Any:
    """The CLI's options, through the one detector spec every entry point shares.

    ``algo`` may list several detectors (``iforest,ecod``): an ensemble, configured by
    ``ensemble`` (combine, normalize, jobs) and ``--param MEMBER.KEY=VALUE``. A seed is
    drawn when ``--seed`` is not given, and the summary reports it.
    """
    from adcore.services.spec import detector_spec

    options = {k: v for k, v in (ensemble or {}).items() if k in ("combine", "normalize", "jobs")}
    spec = detector_spec(
        algo,
        list(params or []),
        contamination=contamination,
        threshold=threshold,
        seed=seed,
        draw_seed=True,
        **options,
    )
    return spec.build()


def print_summary(result: Any, output: str | None, *, top: int = 5) -> None:
    """A short human summary on stderr: counts, threshold, the most anomalous rows."""
    from rich.table import Table

    console = stderr_console()
    share = result.n_anomalies / max(result.n_samples, 1)
    console.print(
        f"[bold]{result.algorithm}[/]: {result.n_anomalies} of {result.n_samples} rows anomalous "
        f"({share:.1%}), threshold {result.threshold:.6g}, fit {result.metadata.get('fit_seconds', 0):.3f}s"
    )
    ensemble = result.metadata.get("ensemble")
    if ensemble:
        weights = ensemble.get("weights") or [None] * len(ensemble["members"])
        parts = [
            f"{m} ({w:.2f})" if w is not None else m
            for m, w in zip(ensemble["members"], weights, strict=True)
        ]
        console.print(f"ensemble {ensemble['combine']} of {', '.join(parts)}")
    anomalies = result.anomalies[:top]
    if anomalies:
        table = Table(title=f"top {len(anomalies)}", title_justify="left")
        for column in ("row", "score", "confidence"):
            table.add_column(column, justify="right")
        for a in anomalies:
            table.add_row(str(a.index), f"{a.score:.6g}", f"{a.confidence:.2f}")
        console.print(table)
    if output:
        console.print(f"scores written to {output}")


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        algo: str = typer.Option(
            ..., "--algo", "-a", help="Detector name (adcore algos), or several for an ensemble: a,b,c."
        ),
        input_path: str = options.INPUT,
        output: str = options.OUTPUT,
        contamination: float = options.CONTAMINATION,
        threshold: str = options.THRESHOLD,
        param: list[str] = options.PARAM,
        seed: int = options.SEED,
        columns: str = options.COLUMNS,
        no_header: bool = options.NO_HEADER,
        nan: options.NanPolicy = options.NAN,
        as_json: bool = options.JSON,
        combine: str = options.COMBINE,
        normalize: str = options.NORMALIZE,
        jobs: int | None = options.JOBS,
        labels: str = options.LABELS,
    ) -> None:
        """Fit a detector (or an ensemble: --algo a,b,c) on a file and score every row of it.

        The output has one row per input row, in order, with 'score' (higher = more
        anomalous) and 'label' (1 = anomaly), after any pass-through columns.
        """
        import numpy as np

        from adcore.data import check_output_path, write_scores
        from adcore.detection import fit_detect
        from adcore.errors import ParameterError

        if output:
            check_output_path(output)
        if combine == "stack" and not labels:
            raise ParameterError("--combine stack needs --labels COLUMN (a few rows labelled 1 or 0)")
        ensemble = {"combine": "stack" if labels else combine, "normalize": normalize, "jobs": jobs}
        detector = build_detector(algo, param, contamination, threshold, seed, ensemble)
        dataset, y = options.read_input(input_path, columns, no_header, nan.value, labels)
        result = fit_detect(detector, dataset, y=y)
        if output:
            write_scores(
                output,
                dataset.expand(result.scores, np.nan),
                dataset.expand(result.labels, -1),
                passthrough=dataset.passthrough,
            )
        if as_json:
            summary = result.summary()
            summary["output"] = output
            summary["top_anomalies"] = [a.to_dict() for a in result.anomalies[:10]]
            print_json(summary)
        else:
            print_summary(result, output)
