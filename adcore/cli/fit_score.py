"""``adcore fit`` (train and store a model version) and ``adcore score`` (score with a stored one)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

from adcore.cli import options
from adcore.cli.console import print_json
from adcore.cli.output import OutputFormat
from adcore.cli.text import help_paragraphs, plural

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
    @help_paragraphs
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
        combine: str = options.COMBINE,
        normalize: str = options.NORMALIZE,
        jobs: int | None = options.JOBS,
    ) -> None:
        """Fit a detector on a file and store it as a new model version; prints NAME@VERSION.

        Takes the same data, threshold and parameter options as 'run'; the same data and
        seed give the same scores. Score new data later with 'adcore score --model NAME'.
        """
        import contextlib

        from adcore.cli.progress import status
        from adcore.cli.run import build_detector
        from adcore.data import read_dataset
        from adcore.domain.schema import TrainingSchema
        from adcore.services.models import fit_model
        from adcore.services.registry import check_model_name, open_store

        check_model_name(model)
        ensemble = {"combine": combine, "normalize": normalize, "jobs": jobs}
        detector = build_detector(algo, param, contamination, threshold, seed, ensemble)
        selected = options.split_columns(columns)
        header = options.header_flag(no_header)
        with contextlib.closing(open_store(store)) as opened:  # a bad store URL fails before a long fit
            dataset = read_dataset(
                input_path, columns=selected, header=header, nan_policy=nan.value, min_rows=2
            )
            schema = TrainingSchema.from_dataset(
                dataset, columns=selected, header=header, nan_policy=nan.value
            )
            with status(f"fitting {algo} on {plural(dataset.n_samples, 'row')}"):
                record = fit_model(detector, dataset, schema, name=model).save(model, store=opened)
        from adcore.domain.events import ModelSaved
        from adcore.services.events import publish_to_subscribers

        saved = ModelSaved.from_record(record, stream="cli:fit")
        publish_to_subscribers([saved], on_error=lambda message: typer.echo(message, err=True))
        if as_json:
            print_json({**record.to_dict(), "store": _redacted(opened.url)})
            return
        typer.echo(record.ref)
        _print_fit_summary(record)

    @app.command("score")
    @help_paragraphs
    def score_cmd(
        model: str = typer.Option(..., "--model", "-m", help="NAME (latest version) or NAME@VERSION."),
        input_path: str = options.INPUT,
        output: str = options.OUTPUT,
        fmt: OutputFormat = options.FORMAT,
        chunk_size: int = typer.Option(
            100_000, "--chunk-size", min=1, help="Rows read and scored at a time (bounds memory)."
        ),
        store: str = STORE,
        columns: str = typer.Option(
            None, "--columns", help="Feature columns (default: those selected at fit); others pass through."
        ),
        no_header: bool = options.NO_HEADER,
        nan: ScoreNan = typer.Option(ScoreNan.error, "--nan", help="Missing values: error, or drop the row."),
        as_json: bool = options.JSON_INSTEAD_OF_ROWS,
    ) -> None:
        """Score a file with a stored model (no refit), in chunks of --chunk-size rows.

        Labels use the threshold stored with the model. The input must have the training
        features (count, and names/order when known).

        The rows go to stdout (csv, or --format), or to --output FILE, one per input row. The
        summary goes to stderr; --json prints it on stdout instead of the rows (add --output
        to keep them).
        """
        from adcore.cli.output import reader_may_leave, resolve_output
        from adcore.cli.progress import bar, known_row_count
        from adcore.services.scoring import score_file

        target = resolve_output(output, fmt, as_json, input_path=input_path)
        loaded = load_stored_model(model, store)
        summary = None
        with (
            reader_may_leave(),
            bar(
                f"scoring with {loaded.ref}",
                known_row_count(input_path),
                unit="rows",
                enabled=not target.on_terminal,  # rows on the terminal: a bar would garble them
            ) as shown,
        ):
            summary = score_file(
                loaded,
                input_path,
                target.path,
                chunk_size=chunk_size,
                columns=options.split_columns(columns),
                header=options.header_flag(no_header),
                nan_policy=nan.value,
                fmt=target.fmt,
                stream=target.stream,
                on_chunk=shown.advance,
            )
        if summary is None:  # the reader of stdout left early (| head): nothing more to say
            return
        payload = summary.to_dict()
        payload["output"] = target.name
        payload["threshold"] = loaded.threshold
        if as_json:
            print_json(payload)
        else:
            _print_score_summary(payload)


def existing_store(store: str | None, ref: str) -> Any:
    """The store to read ``ref`` from (a context manager closing it); reading never creates a store.

    A ``--store`` typed on the command line that does not exist is an error naming it. The
    configured store (ADCORE_STORE or the default) appears with the first fit: before that,
    ``ref`` is simply a model that is not there.
    """
    import contextlib

    from adcore.services.registry import (
        StoreNotFoundError,
        model_not_found,
        open_store,
        parse_model_ref,
        store_url,
    )

    name, version = parse_model_ref(ref)  # a bad reference is reported before the store is looked at
    try:
        opened = open_store(store, create=False)
    except StoreNotFoundError:
        if store:
            raise
        raise model_not_found(name, version, [], store_url(None)) from None
    return contextlib.closing(opened)


def load_stored_model(ref: str, store: str | None) -> Any:
    """Load ``ref`` from a store that must already exist (see :func:`existing_store`)."""
    from adcore.services.models import load_model

    with existing_store(store, ref) as opened:
        loaded = load_model(ref, opened)
    loaded.store = store  # the URL, as load_model(ref, url) records it, not the closed store
    return loaded


def _redacted(url: str) -> str:
    from adcore.services.registry import redact_url

    return redact_url(url)


def _print_fit_summary(record: Any) -> None:
    """What was stored, its threshold in the precision of its training scores, and its seed."""
    from adcore.cli.summaries import print_lines, seed_line, seed_used
    from adcore.cli.text import NumberFormat

    quantiles = getattr(record, "score_quantiles", None) or {}
    number = NumberFormat.for_values([record.threshold, *quantiles.values()])
    seed = getattr(record, "seed", None)
    if seed is None:
        seed = seed_used({}, record.params)
    print_lines(
        [
            f"stored {record.ref}: {record.algorithm} on {plural(record.n_samples, 'row')} x "
            f"{plural(record.n_features, 'feature')}, threshold {number.exact(record.threshold)}, "
            f"{plural(record.metrics['n_anomalies'], 'training row')} anomalous",
            seed_line(seed),
        ]
    )


def _print_score_summary(payload: dict[str, Any]) -> None:
    """Counts, the stored threshold beside the scores in one precision, time, the top rows."""
    from adcore.cli.summaries import anomalous_rows, print_lines, seconds, top_table
    from adcore.cli.text import NumberFormat

    number = NumberFormat.for_values([payload["threshold"], payload["score_min"], payload["score_max"]])
    dropped = payload["n_rows"] - payload["n_scored"]
    dropped_note = f" ({plural(dropped, 'row')} dropped)" if dropped else ""
    top = payload["top_anomalies"][:5]
    print_lines(
        [
            f"[bold]{payload['model']}[/]: {anomalous_rows(payload['n_anomalies'], payload['n_rows'])}"
            f"{dropped_note}, "
            f"threshold {number.exact(payload['threshold'])}, {seconds(payload['seconds'])}",
            top_table(top, number) if top else None,
            f"scores written to {payload['output']}" if payload["output"] not in (None, "-") else None,
        ]
    )
