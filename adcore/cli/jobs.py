"""``adcore jobs list | show ID | cancel ID``: look at and cancel jobs on the Redis queue."""

from __future__ import annotations

import typer

from adcore.cli.text import help_paragraphs

QUEUE = typer.Option(None, "--queue", help="Redis URL of the job queue (default: $ADCORE_QUEUE).")


def _open(queue: str | None) -> object:
    from adcore.errors import ParameterError
    from adcore.services.jobs.queue import open_queue, queue_url

    url = queue_url(queue)
    if url is None:
        raise ParameterError(
            "adcore jobs needs --queue redis://HOST:PORT/DB (or ADCORE_QUEUE); jobs of a server "
            "without --queue live in that server: GET /v1/jobs"
        )
    return open_queue(url)


def register(app: typer.Typer) -> None:
    jobs = typer.Typer(help="Asynchronous jobs on the Redis queue (see docs/jobs.md).", no_args_is_help=True)
    app.add_typer(jobs, name="jobs")

    @jobs.command("list")
    @help_paragraphs
    def list_cmd(
        queue: str = QUEUE,
        limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
        status: str = typer.Option(
            None, "--status", help="Only queued, started, finished, failed or canceled."
        ),
        as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
    ) -> None:
        """The newest jobs: id, status, kind, priority, created, and the error of a failed one."""
        from adcore.cli.console import print_json

        opened = _open(queue)
        records = opened.list(limit, status)  # type: ignore[attr-defined]
        if as_json:
            print_json({"jobs": [r.to_dict() for r in records]})
            return
        for r in records:
            tail = f"  {r.error['type']}: {r.error['message']}" if r.error else ""
            typer.echo(f"{r.id}  {r.status:<9} {r.kind:<6} {r.priority:<6} {r.created_at or '-'}{tail}")

    @jobs.command("show")
    def show_cmd(job_id: str = typer.Argument(..., help="The job's id."), queue: str = QUEUE) -> None:
        """One job as JSON: its request, status, times, result or error."""
        from adcore.cli.console import print_json

        print_json(_open(queue).get(job_id).to_dict())  # type: ignore[attr-defined]

    @jobs.command("cancel")
    def cancel_cmd(job_id: str = typer.Argument(..., help="The job's id."), queue: str = QUEUE) -> None:
        """Cancel a queued job, or stop a running one; prints its status afterwards."""
        record = _open(queue).cancel(job_id)  # type: ignore[attr-defined]
        typer.echo(f"{record.id} {record.status}")
