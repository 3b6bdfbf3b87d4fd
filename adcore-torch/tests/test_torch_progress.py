"""The progress bar: drawn on a terminal's stderr, silent when piped or with verbose=False."""

from __future__ import annotations

import io
import sys

import pytest
from torch_support import FAST, make_rows

from adcore_torch.detectors import AutoEncoder
from adcore_torch.progress import EpochProgress, progress_enabled


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fit_with_stderr(monkeypatch, stream: io.StringIO, **params) -> str:
    rows = make_rows()
    monkeypatch.setattr(sys, "stderr", stream)
    AutoEncoder(random_state=0, **{**FAST, **params}).fit(rows[0])
    return stream.getvalue()


def test_quiet_when_stderr_is_not_a_terminal(monkeypatch) -> None:
    assert fit_with_stderr(monkeypatch, io.StringIO(), verbose=True) == ""


def test_bar_with_epochs_and_losses_on_a_terminal(monkeypatch) -> None:
    out = fit_with_stderr(monkeypatch, FakeTerminal(), verbose=True)
    assert "AutoEncoder (cpu)" in out and "3/3" in out and "loss" in out and "val" in out


def test_quiet_on_a_terminal_with_verbose_false_or_adcore_quiet(monkeypatch) -> None:
    assert fit_with_stderr(monkeypatch, FakeTerminal(), verbose=False) == ""
    monkeypatch.setenv("ADCORE_QUIET", "1")
    assert fit_with_stderr(monkeypatch, FakeTerminal(), verbose=True) == ""


def test_disabled_bar_is_a_no_op() -> None:
    stream = io.StringIO()
    with EpochProgress(5, "x", stream=stream) as bar:
        bar.update(1, 0.5, 0.6)
        bar.stop_early(1)
    assert stream.getvalue() == ""
    assert not progress_enabled(True, stream)


@pytest.mark.parametrize("verbose", [True, False])
def test_enabled_only_with_verbose_on_a_tty(verbose: bool) -> None:
    assert progress_enabled(verbose, FakeTerminal()) is verbose
