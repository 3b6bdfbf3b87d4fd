"""``adcore run``: fit a detector on a file and write one score and label per row."""

from __future__ import annotations

from typing import Any

import typer

from adcore.cli import options
from adcore.cli.console import print_json, stderr_console


def build_detector(
    algo: str, params: list[str] | None, contamination: float, threshold: str, seed: int | None
) -> Any:
    """Parse ``--param`` against the algorithm's schema and validate everything up front."""
    from adcore.detector import Detector, create_detector
    from adcore.params import parse_key_values

    model = Detector(algo).params_model()
    values = parse_key_values(list(params or []), model)
    return create_detector(
        algo, contamination=contamination, threshold=threshold, random_state=seed, **values
    )


def print_summary(result: Any, output: str | None, *, top: int = 5) -> None:
    """A short human summary on stderr: counts, threshold, the most anomalous rows."""
    from rich.table import Table

    console = stderr_console()
    share = result.n_anomalies / max(result.n_samples, 1)
    console.print(
        f"[bold]{result.algorithm}[/]: {result.n_anomalies} of {result.n_samples} rows anomalous "
        f"({share:.1%}), threshold {result.threshold:.6g}, fit {result.metadata.get('fit_seconds', 0):.3f}s"
    )
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
        algo: str = typer.Option(..., "--algo", "-a", help="Detector name, e.g. core:hbos (adcore algos)."),
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
    ) -> None:
        """Fit a detector on a file and score every row of it.

        The output has one row per input row, in order, with 'score' (higher = more
        anomalous) and 'label' (1 = anomaly), after any pass-through columns.
        """
        import numpy as np

        from adcore.data import check_output_path, read_dataset, write_scores
        from adcore.detection import fit_detect

        if output:
            check_output_path(output)
        detector = build_detector(algo, param, contamination, threshold, seed)
        dataset = read_dataset(
            input_path,
            columns=options.split_columns(columns),
            header=options.header_flag(no_header),
            nan_policy=nan.value,
            min_rows=2,
        )
        result = fit_detect(detector, dataset)
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
