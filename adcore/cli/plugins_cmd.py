"""``adcore plugins``: every installed plugin, what it registers, and what broke it if anything.

Like ``llm plugins``, the core's own built-ins (the ``core`` plugin) are hidden unless
``--all`` is given: the question users ask here is "what did I install, and does it work?".
"""

from __future__ import annotations

from typing import Any

import typer

from adcore.cli.console import print_json, stdout_console


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list (every field)."),
        show_all: bool = typer.Option(False, "--all", help="Include adcore's built-in plugin, 'core'."),
    ) -> None:
        """List installed plugins: name, version, what each registers, hooks, ok or what broke it.

        Every hook is called (commands on a throwaway app; routes only when FastAPI is
        installed), so a plugin whose hook raises shows as broken.
        """
        from adcore.plugins import get_host

        infos = [i for i in get_host().plugins(check_hooks=True) if show_all or not i.builtin]
        if as_json:
            print_json([i.to_dict() for i in infos])
            return
        if not infos:
            stdout_console().print("no plugins installed ('adcore plugins --all' shows adcore's built-ins)")
            return
        stdout_console().print(_table(infos, show_all))


def _table(infos: list[Any], show_all: bool) -> Any:
    """One row per plugin; registrations as ``port: count`` (the keys of ``--json``'s ``registers``)."""
    from rich.table import Table

    title = f"{len(infos)} plugin{'s' if len(infos) != 1 else ''}"
    if not show_all:
        title += "  (built-ins hidden: --all shows them)"
    table = Table(title=title, title_justify="left")
    for column in ("name", "version", "registers", "hooks", "status"):
        table.add_column(column, overflow="fold")
    for info in infos:
        registers = ", ".join(f"{kind}: {count}" for kind, count in info.counts().items())
        hooks = ", ".join(h.removeprefix("register_") for h in info.hooks)
        version = info.version or ("built-in" if info.builtin else "?")
        table.add_row(info.name, version, registers or "-", hooks, _status(info))
    return table


def _status(info: Any) -> str:
    if info.errors:
        return "[red]" + "; ".join(info.errors) + "[/]"
    if info.notes:
        return "[green]ok[/] [yellow](" + "; ".join(info.notes) + ")[/]"
    return "[green]ok[/]"
