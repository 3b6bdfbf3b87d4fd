"""``adcore fit`` (train and store a model version) and ``adcore score`` (score with a stored one)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

from adcore.cli import options
from adcore.cli.console import print_json, stderr_console

STORE = typer.Option(
    None,
    "--store",
    help="Model store: a directory, or postgresql://USER@HOST/DB?artifacts=s3://BUCKET/PREFIX "
    "(default: $ADCORE_STORE, else $ADCORE_HOME/models).",
)


class ScoreNan(str, Enum):
    error = "error"
    drop = "drop"


def register(app: typer.Typer) -> None:
    @app.command("fit")
    def fit_cmd(
        algo: str = typer.Option(..., "--algo", "-a", help="Detector name, e.g. core:hbos (adcore algos)."),
        input_path: str = options.INPUT,
        model: str = typer.Option(..., "--model", "-m", help="Model name; each fit stores the next version."),
        store: str = STORE,
        contamination: float = options.CONTAMINATION,
        threshold: str = options.THRESHOLD,
        param: list[str] = options.PARAM,
        seed: int = options.SEED,
        columns: str = options.COLUMNS,
        no_header: bool = options.NO_HEADER,
        nan: options.NanPolicy = options.NAN,
        as_json: bool = options.JSON,
    ) -> None:
        """Fit a detector on a file and store it as a new model version; prints NAME@VERSION.

        Takes the same data, threshold and parameter options as 'run'; the same data and
        seed give the same scores. Score new data later with 'adcore score --model NAME'.
        """
        import contextlib

        from adcore.cli.run import build_detector
        from adcore.data import read_dataset
        from adcore.models import fit_model
        from adcore.registry import check_model_name, open_store
        from adcore.schema import TrainingSchema

        check_model_name(model)
        detector = build_detector(algo, param, contamination, threshold, seed)
        selected = options.split_columns(columns)
        header = options.header_flag(no_header)
        with contextlib.closing(open_store(store)) as opened:  # a bad store URL fails before a long fit
            dataset = read_dataset(
                input_path, columns=selected, header=header, nan_policy=nan.value, min_rows=2
            )
            schema = TrainingSchema.from_dataset(
                dataset, columns=selected, header=header, nan_policy=nan.value
            )
            record = fit_model(detector, dataset, schema, name=model).save(model, store=opened)
        if as_json:
            print_json({**record.to_dict(), "store": _redacted(opened.url)})
            return
        typer.echo(record.ref)
        typer.echo(
            f"stored {record.ref}: {record.algorithm} on {record.n_samples} rows x {record.n_features} "
            f"features, threshold {record.threshold:.6g}, "
            f"{record.metrics['n_anomalies']} training rows anomalous",
            err=True,
        )

    @app.command("score")
    def score_cmd(
        model: str = typer.Option(..., "--model", "-m", help="NAME (latest version) or NAME@VERSION."),
        input_path: str = options.INPUT,
        output: str = options.OUTPUT,
        chunk_size: int = typer.Option(
            100_000, "--chunk-size", min=1, help="Rows read and scored at a time (bounds memory)."
        ),
        store: str = STORE,
        columns: str = typer.Option(
            None, "--columns", help="Feature columns (default: those selected at fit); others pass through."
        ),
        no_header: bool = options.NO_HEADER,
        nan: ScoreNan = typer.Option(ScoreNan.error, "--nan", help="Missing values: error, or drop the row."),
        as_json: bool = options.JSON,
    ) -> None:
        """Score a file with a stored model (no refit), in chunks of --chunk-size rows.

        Labels use the threshold stored with the model. The input must have the training
        features (count, and names/order when known); the output has one row per input row.
        """
        from adcore.models import load_model
        from adcore.scoring import score_file

        if output:
            from adcore.data import check_output_path

            check_output_path(output)
        loaded = load_model(model, store)
        summary = score_file(
            loaded,
            input_path,
            output or None,
            chunk_size=chunk_size,
            columns=options.split_columns(columns),
            header=options.header_flag(no_header),
            nan_policy=nan.value,
        )
        payload = summary.to_dict()
        payload["threshold"] = loaded.threshold
        if as_json:
            print_json(payload)
        else:
            _print_score_summary(payload)


def _redacted(url: str) -> str:
    from adcore.registry import redact_url

    return redact_url(url)


def _print_score_summary(payload: dict[str, Any]) -> None:
    from rich.table import Table

    console = stderr_console()
    share = payload["n_anomalies"] / max(payload["n_scored"], 1)
    console.print(
        f"[bold]{payload['model']}[/]: {payload['n_anomalies']} of {payload['n_rows']} rows anomalous "
        f"({share:.1%}), threshold {payload['threshold']:.6g}, {payload['seconds']:.3f}s"
    )
    top = payload["top_anomalies"][:5]
    if top:
        table = Table(title=f"top {len(top)}", title_justify="left")
        for column in ("row", "score", "confidence"):
            table.add_column(column, justify="right")
        for a in top:
            table.add_row(str(a["index"]), f"{a['score']:.6g}", f"{a['confidence']:.2f}")
        console.print(table)
    if payload["output"]:
        console.print(f"scores written to {payload['output']}")
