"""``adcore models``: list, show and remove stored model versions."""

from __future__ import annotations

import sys
from typing import Any

import typer

from adcore.cli.console import print_json, stdout_console
from adcore.cli.fit_score import STORE, existing_store
from adcore.cli.text import NumberFormat, help_paragraphs, plural


def _store(url: str | None) -> Any:
    """The store to read or remove from: never created here, so a mistyped --store is an error."""
    import contextlib

    from adcore.services.registry import open_store

    return contextlib.closing(open_store(url, create=False))


def _list_records(url: str | None) -> tuple[list[Any], str]:
    """Every record and the (redacted) store URL; a configured store not made yet simply has none.

    A ``--store`` given on the command line that does not exist is an error naming it (a typo).
    The configured one (ADCORE_STORE, or the default under ADCORE_HOME) only appears with the
    first fit, so before that the list is empty; either way nothing is created.
    """
    from adcore.errors import StoreNotFoundError
    from adcore.services.registry import redact_url, store_url

    try:
        with _store(url) as opened:
            return opened.list(), redact_url(opened.url)
    except StoreNotFoundError:
        if url:
            raise
        return [], redact_url(store_url(None))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="List, show and remove stored models (versions made by 'adcore fit').")

    @models.callback(invoke_without_command=True)
    def list_cmd(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
        store: str = STORE,
    ) -> None:
        """List every stored model version: NAME@VERSION, algorithm, features, threshold, created."""
        if ctx.invoked_subcommand is not None:
            # 'adcore models --store X rm ...' must act on X, never silently on the default store
            ctx.obj = {"store": store, "json": as_json}
            return
        records, url = _list_records(store)
        if as_json:
            print_json([r.to_dict() for r in records])
            return
        if not records:
            typer.echo(f"no models in {url}; 'adcore fit --algo ALGO --input FILE --model NAME' stores one")
            return
        from rich.table import Table

        latest = {r.name: r.version for r in records}
        title = f"{plural(len(records), 'model version')} in {url}  (* = latest)"
        table = Table(title=title, title_justify="left")
        for column in ("model", "algorithm", "features", "rows", "threshold", "created", "size"):
            table.add_column(column, justify="right" if column in ("features", "rows", "size") else "left")
        for r in records:
            star = "*" if latest[r.name] == r.version else " "
            table.add_row(
                f"{r.ref}{star}",
                r.algorithm,
                str(r.n_features),
                str(r.n_samples),
                f"{r.threshold:.6g}",
                r.created_at[:16].replace("T", " "),
                _size(r.size),
            )
        stdout_console().print(table)

    @models.command("show")
    def show_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="NAME (latest version) or NAME@VERSION."),
        as_json: bool = typer.Option(False, "--json", help="Print the full index entry as JSON."),
        store: str = STORE,
    ) -> None:
        """Show one model version: schema, threshold, training-score quantiles, versions, checksum."""
        from adcore.services.registry import parse_model_ref, redact_url

        store, as_json = _inherit(ctx, store, as_json)
        name, version = parse_model_ref(ref)
        with existing_store(store, ref) as opened:
            record = opened.get(name, version)
            url = redact_url(opened.url)
        data = {**record.to_dict(), "store": url}
        if as_json:
            print_json(data)
            return
        typer.echo(f"{record.ref}  {record.algorithm}  (created {record.created_at})")
        features = ", ".join(record.feature_names) if record.feature_names else "(unnamed)"
        number = NumberFormat.for_values([record.threshold, *record.score_quantiles.values()])
        rows = [
            ("store", url),
            ("params", _inline(record.params)),
            (
                "threshold",
                f"{number.exact(record.threshold)} "
                f"({record.threshold_method}, contamination {record.contamination:g})",
            ),
            ("trained on", f"{plural(record.n_samples, 'row')} x {plural(record.n_features, 'feature')}"),
            ("features", features),
            ("seed", "-" if getattr(record, "seed", None) is None else str(record.seed)),
            ("read options", _inline({k: v for k, v in record.read_options.items() if v is not None})),
            ("score quantiles", _inline({k: round(v, 6) for k, v in record.score_quantiles.items()})),
            (
                "metrics",
                _inline({k: round(v, 6) if isinstance(v, float) else v for k, v in record.metrics.items()}),
            ),
            ("versions", _inline(record.versions)),
            ("sha256", record.sha256),
            ("size", _size(record.size)),
        ]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            typer.echo(f"  {key.ljust(width)}  {value}")

    @models.command("rm")
    @help_paragraphs
    def rm_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="NAME@VERSION, or NAME with --all."),
        all_versions: bool = typer.Option(False, "--all", help="Remove every version of NAME."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (with --all)."),
        as_json: bool = typer.Option(False, "--json", help="Print the removed versions as JSON."),
        store: str = STORE,
    ) -> None:
        """Remove one model version (NAME@VERSION), or all versions of NAME with --all.

        Version numbers are never reused: after removing payments@2, the next fit is payments@3.
        """
        from adcore.errors import ParameterError
        from adcore.services.registry import parse_model_ref

        store, as_json = _inherit(ctx, store, as_json)
        name, version = parse_model_ref(ref)
        if all_versions and version is not None:
            raise ParameterError(f"--all removes every version of a name: give {name!r}, not {ref!r}")
        if not all_versions and version is None:
            raise ParameterError(
                f"name the version to remove ({name}@N; 'adcore models show {name}' shows the latest), "
                f"or pass --all to remove every version of {name!r}"
            )
        with existing_store(store, ref) as opened:
            if all_versions and not yes:
                count = len(opened.list(name))
                if count and not sys.stdin.isatty():
                    raise ParameterError(
                        f"refusing to remove all {count} versions of {name!r} without confirmation: add --yes"
                    )
                if count and not typer.confirm(f"Remove all {count} versions of {name!r}?", err=True):
                    raise typer.Abort()
            removed = opened.remove(name, version)
        if as_json:
            print_json([r.to_dict() for r in removed])
            return
        for r in removed:
            typer.echo(f"removed {r.ref}")

    app.add_typer(models, name="models")


def _inherit(ctx: typer.Context, store: str | None, as_json: bool) -> tuple[str | None, bool]:
    """A subcommand's --store/--json, else those given to the group ('adcore models --store X show')."""
    parent = ctx.obj if isinstance(ctx.obj, dict) else {}
    return store or parent.get("store"), as_json or bool(parent.get("json"))


def _inline(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) or "-"
