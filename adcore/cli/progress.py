"""Progress for long work, drawn on stderr only when stderr is a terminal.

A person waiting at a terminal sees a spinner, a bar and the elapsed time; a pipe, a log file
or a test's captured output sees nothing at all, so the rows on stdout and the messages on
stderr stay exactly what a script expects. The decision is ``sys.stderr.isatty()`` alone:
rich's own detection also honours ``FORCE_COLOR``, which CI systems set on pipes.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

SHOW_AFTER_SECONDS = 1.0  # quick work finishes before anything is drawn: no flicker


def stderr_is_terminal() -> bool:
    """Whether progress may be drawn: stderr is an interactive terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _terminal_console() -> Any:
    from adcore.cli.console import console

    return console(stderr=True, force_terminal=True, soft_wrap=False)


class Status:
    """A spinner with elapsed time; ``update(text)`` changes what it says it is doing."""

    def __init__(self, text: str, *, delay: float = SHOW_AFTER_SECONDS) -> None:
        self._text = text
        self._delay = delay
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None
        self._timer: threading.Timer | None = None
        self._closed = False

    def update(self, text: str) -> None:
        with self._lock:
            self._text = text
            if self._progress is not None:
                self._progress.update(self._task, description=text)

    def _show(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with self._lock:
            if self._closed:
                return
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=_terminal_console(),
                transient=True,
            )
            self._task = self._progress.add_task(self._text, total=None)
            self._progress.start()

    def start(self) -> Status:
        if stderr_is_terminal():
            self._timer = threading.Timer(self._delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._progress is not None:
                self._progress.stop()


@contextlib.contextmanager
def status(text: str, *, delay: float = SHOW_AFTER_SECONDS) -> Iterator[Status]:
    """A spinner for work of unknown length (a fit), shown only once it has taken ``delay`` s."""
    shown = Status(text, delay=delay).start()
    try:
        yield shown
    finally:
        shown.stop()


class Bar:
    """A bar (``total`` known) or a counter (``total`` None) with elapsed time."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: float = 1, *, text: str | None = None) -> None:
        if self._progress is not None:
            extra = {"description": text} if text is not None else {}
            self._progress.update(self._task, advance=amount, **extra)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)


@contextlib.contextmanager
def bar(text: str, total: float | None, *, unit: str = "", enabled: bool = True) -> Iterator[Bar]:
    """Count work done (``datasets x detectors``, rows scored); nothing when not on a terminal.

    ``enabled=False`` draws nothing either: for work that writes to the terminal meanwhile.
    """
    if not (enabled and stderr_is_terminal()):
        yield Bar(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    else:
        columns += [TextColumn("{task.completed:,.0f}" + (f" {unit}" if unit else ""))]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=_terminal_console(), transient=True) as progress:
        yield Bar(progress, progress.add_task(text, total=total))


def known_row_count(path: str) -> int | None:
    """The input's row count when it is cheap to know (npy, Parquet metadata), for a bar's total.

    Only asked for on a terminal; text formats would need a pass over the file, so their
    progress is a running count instead. Any trouble means "unknown": the reader reports it.
    """
    if not stderr_is_terminal():
        return None
    lowered = str(path).lower()
    try:
        if lowered.endswith(".npy"):
            import numpy as np

            return int(np.load(path, mmap_mode="r").shape[0])
        if lowered.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:
        return None
    return None


class JobBar:
    """Draws an executor's progress (:class:`adcore.services.executors.Progress`) on a terminal.

    An executor learns how much work there is only once it has listed its input, so the bar
    is made on ``start(total, unit)``; ``total_hint`` stands in for a total the executor
    does not know (the local executor's rows, from Parquet metadata). ``info`` lines, such
    as a cluster's dashboard address, are printed on stderr whether or not a bar is drawn.
    """

    def __init__(self, text: str, *, enabled: bool = True, total_hint: int | None = None) -> None:
        self._text, self._hint = text, total_hint
        self._enabled = enabled and stderr_is_terminal()
        self._progress: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def start(self, total: int | None, unit: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        total = total if total is not None else self._hint
        with self._lock:
            if not self._enabled or self._progress is not None:
                return
            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if total is not None:
                columns += [BarColumn(), MofNCompleteColumn(), TextColumn(unit)]
            else:
                columns += [TextColumn("{task.completed:,.0f}" + (f" {unit}" if unit else ""))]
            columns.append(TimeElapsedColumn())
            self._progress = Progress(*columns, console=_terminal_console(), transient=True)
            self._task = self._progress.add_task(self._text, total=total)
            self._progress.start()

    def advance(self, n: int) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.update(self._task, advance=n)

    def info(self, line: str) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(line, markup=False, highlight=False)
                return
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def stop(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


@contextlib.contextmanager
def job_progress(text: str, *, enabled: bool = True, total_hint: int | None = None) -> Iterator[Any]:
    """An executor ``Progress`` drawing a :class:`JobBar`, stopped when the block ends."""
    from adcore.services.executors import Progress

    shown = JobBar(text, enabled=enabled, total_hint=total_hint)
    try:
        yield Progress(start=shown.start, advance=shown.advance, info=shown.info)
    finally:
        shown.stop()
