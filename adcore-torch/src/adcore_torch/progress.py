"""The progress bar over epochs: on a terminal's stderr only, silent everywhere else.

Training a deep detector takes seconds to hours, so a person at a terminal wants to see
epochs and losses go by; a pipe, a log file, a test or a server must get nothing (stdout
carries data, and progress escapes in a log are noise). Hence: shown only when
``verbose`` is on, stderr is a TTY, and ``ADCORE_QUIET`` is not set.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

QUIET_ENV = "ADCORE_QUIET"


def progress_enabled(verbose: bool, stream: TextIO | None = None) -> bool:
    """Whether a bar should be drawn on ``stream`` (default stderr)."""
    if not verbose or os.environ.get(QUIET_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class EpochProgress:
    """A context manager: ``with EpochProgress(...) as bar: bar.update(epoch, train, val)``.

    A no-op object when disabled, so the training loop never branches on verbosity.
    """

    def __init__(
        self, total: int, description: str, *, verbose: bool = True, stream: TextIO | None = None
    ) -> None:
        self.total = total
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(verbose, self.stream)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, force_terminal=True, stderr=self.stream is sys.stderr)
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epochs  {task.fields[losses]}"),
                TimeElapsedColumn(),
                console=console,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, losses="")
        return self

    def update(self, epoch: int, train_loss: float, val_loss: float | None = None) -> None:
        """Advance to ``epoch`` (1-based) and show its losses."""
        if self._progress is None:
            return
        losses = f"loss {train_loss:.4g}" + (f"  val {val_loss:.4g}" if val_loss is not None else "")
        self._progress.update(self._task, completed=epoch, losses=losses)

    def stop_early(self, epoch: int) -> None:
        """Early stopping: shrink the bar to the epochs actually run so it ends full."""
        if self._progress is not None:
            self._progress.update(self._task, total=epoch, completed=epoch)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
