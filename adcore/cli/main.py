"""Entry point: runs the app and maps errors to exit codes in exactly one place.

0 = ok; 2 = bad usage or bad input (one line on stderr, no traceback); 1 = a bug or an
unexpected failure (one line; ``ADCORE_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return code


def run_cli(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    import typer

    from adcore.errors import AdcoreError

    try:  # typer >= 0.22 vendors click; older versions use click itself
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import ClickException

    try:
        from adcore.cli.app import build_app

        app = build_app()
        command = typer.main.get_command(app)
        result = command.main(args=argv, prog_name="adcore", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except AdcoreError as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 2)
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit:
        if _reader_went_away():
            return 0  # `adcore ... 2>&1 | head`: the reader stopped early, nothing went wrong
        raise
    except typer.Abort:
        return _fail("aborted", 130)
    except ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 2  # typer has already printed the help
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return _fail(exc.format_message().replace("\n", " ") + hint, 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head); not an error worth a message
        return 0
    except Exception as exc:
        if os.environ.get("ADCORE_DEBUG"):
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug; ADCORE_DEBUG=1 shows the traceback)", 1
        )


def _reader_went_away() -> bool:
    """Whether click has just met a closed pipe on stdout or stderr.

    click catches EPIPE inside its own ``main`` and exits 1, after wrapping both streams in
    its ``PacifyFlushWrapper`` (so the interpreter's final flush stays quiet); that wrapper is
    the sign. A reader that leaves early (``| head``) is no error: exit 0, as for stdout.
    """
    return any(type(stream).__name__ == "PacifyFlushWrapper" for stream in (sys.stdout, sys.stderr))


#: numpy asks Linux for transparent huge pages for every array of 4 MB or more. Where the
#: kernel compacts memory synchronously for such requests (``defrag = madvise``, its default)
#: and free memory is fragmented (a machine with a busy page cache), each fresh large array
#: stalls: ``adcore run`` on 2,000,000 x 20 rows spent 1 s of 3.2 s there (docs/benchmarks.md).
#: The CLI's arrays are touched once or twice each, too few passes for larger pages to repay.
#: Set before numpy is imported; a value the user set wins.
NUMPY_HUGEPAGE_DEFAULT = ("NUMPY_MADVISE_HUGEPAGE", "0")


def main() -> None:
    os.environ.setdefault(*NUMPY_HUGEPAGE_DEFAULT)
    code = run_cli(sys.argv[1:])
    # Everything the command made is about to be torn down with the interpreter: frozen objects
    # are not traversed by the collector at shutdown, which saves half a second after a run that
    # imported scikit-learn, scipy and pandas (PyOD's detectors). Nothing runs after this.
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
