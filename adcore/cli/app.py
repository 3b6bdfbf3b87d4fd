"""The Typer application: the built-in command modules and the plugins' commands."""

from __future__ import annotations

from typing import Optional

import typer

BUILTIN_COMMAND_MODULES = (
    "adcore.cli.algos",
    "adcore.cli.plugins_cmd",
    "adcore.cli.run",
    "adcore.cli.bench",
    "adcore.cli.explain",
    "adcore.cli.fit_score",
    "adcore.cli.models",
    "adcore.cli.stream",
    "adcore.cli.serve",
    "adcore.cli.worker",
    "adcore.cli.jobs",
)


def _version(value: bool) -> None:
    if value:
        import adcore

        typer.echo(f"adcore {adcore.__version__}")
        raise typer.Exit()


def build_app(*, with_plugins: bool = True) -> typer.Typer:
    """Create the app, add every built-in command, then let plugins add theirs."""
    import importlib

    app = typer.Typer(
        name="adcore",
        help="Plugin-based anomaly detection: run detectors from any installed plugin on your data.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )

    @app.callback()
    def root(
        version: Optional[bool] = typer.Option(  # noqa: UP045 - typer reads the annotation
            None, "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ) -> None:
        """adcore: anomaly detection with plugins."""

    for module_name in BUILTIN_COMMAND_MODULES:
        importlib.import_module(module_name).register(app)
    if with_plugins:
        from adcore.plugins import get_host

        get_host().add_commands(app)
    from adcore.cli.text import unwrap_help

    unwrap_help(app)  # docstrings wrapped by hand would break sentences in the terminal
    return app
