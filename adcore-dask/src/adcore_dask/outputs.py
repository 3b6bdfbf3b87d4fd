"""Where scores go: a directory (local or ``s3://``) of part files, then ``_SUCCESS``.

Part ``part-NNNNN.EXT`` holds the rows of partition NNNNN; the name depends only on the
partition, so a task that Dask runs twice (its worker died after writing) writes the same
name with the same rows: never a duplicate. Each part is published whole: locally written
to a hidden temporary name and renamed (``ScoreWriter``'s atomic publish), on S3 uploaded in
one PUT (a multipart upload for big parts, which S3 also makes visible only when complete).
``_SUCCESS`` (a small JSON summary) is written last, by the client, once every part is in
place: readers wait for it.

The format: ``--format`` if given, else the extension of the directory's name
(``scores.csv/``), else Parquet. csv, tsv, jsonl and parquet are accepted: formats whose
parts a reader can simply concatenate or read as one dataset.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adcore.errors import DataError

from adcore_dask.storage import filesystem, is_local, local_path

PART_FORMATS = ("parquet", "csv", "tsv", "jsonl")
SUCCESS = "_SUCCESS"
_PART_RE = re.compile(r"^part-\d+\.")
# ScoreWriter's temporary names for our parts: ".part-00003.parquet.1a2b3c4d.tmp"
_TEMP_RE = re.compile(r"^\.part-\d+\.[a-z]+\.[0-9a-f]{8}\.tmp$")


@dataclass(frozen=True)
class OutputDir:
    """The output directory as every task sees it: URL (no trailing slash) and part format."""

    url: str
    fmt: str

    @property
    def local(self) -> bool:
        return is_local(self.url)

    def part_name(self, index: int) -> str:
        return f"part-{index:05d}.{self.fmt}"

    def part_url(self, index: int) -> str:
        return f"{self.url}/{self.part_name(index)}"


def output_format(url: str, fmt: str | None) -> str:
    """The part format: ``fmt``, else the directory name's extension, else parquet."""
    if fmt is None:
        ext = os.path.splitext(url.rstrip("/"))[1].lower().lstrip(".")
        fmt = {"pq": "parquet", "ndjson": "jsonl"}.get(ext, ext) if ext else "parquet"
        if fmt not in PART_FORMATS:
            fmt = "parquet"
    f = str(fmt).strip().lower().lstrip(".")
    f = {"pq": "parquet", "ndjson": "jsonl"}.get(f, f)
    if f not in PART_FORMATS:
        raise DataError(
            f"the dask executor writes part files as {', '.join(PART_FORMATS)}, not {fmt!r} "
            "(parts of a json array or npy file cannot be read as one dataset)",
            path=url,
        )
    return f


def _input_root(uri: str) -> str:
    """The directory an input names (the part of a glob before its first wildcard), normalised
    like output URLs: absolute locally, no trailing slash."""
    cut = min((uri.index(ch) for ch in "*?[" if ch in uri), default=None)
    root = uri if cut is None else uri[:cut].rsplit("/", 1)[0]
    if is_local(root):
        root = os.path.abspath(local_path(root))
    return root.rstrip("/")


def refuse_inside_input(out: OutputDir, input_uri: str) -> None:
    """Refuse an output directory inside the input directory: the next run over the same input
    would read the scores as data (and they are not the model's columns)."""
    root = _input_root(input_uri)
    if is_local(root) and not os.path.isdir(root):
        return  # a single input file: its directory is not read as a whole
    if out.url == root or out.url.startswith(root + "/"):
        raise DataError(
            f"is inside the input directory {root}; a later run over that input would read the "
            "scores as data: choose an --output outside it",
            path=out.url,
        )


def prepare_output(
    url: str, fmt: str | None, options: Mapping[str, Any], input_uri: str | None = None
) -> OutputDir:
    """Check the output directory before any work and create it (locally).

    ``input_uri``: the job's input, which the output must not lie inside.

    Refused: a path that is a file, and a directory that already holds a job's output
    (``_SUCCESS`` or ``part-*`` files), whatever its state: adcore never deletes or mixes
    into data it did not write in this job. Other files in the directory are left alone.
    """
    f = output_format(url, fmt)
    clean = url.rstrip("/") or url
    if is_local(clean):  # workers have their own working directory: name it absolutely
        clean = os.path.abspath(local_path(clean))
    if input_uri is not None:
        refuse_inside_input(OutputDir(clean, f), input_uri)
    fs, path = filesystem(clean, options)
    fs.invalidate_cache(path)  # s3fs caches listings: another process may have written here since
    try:
        if fs.isfile(path):
            raise DataError(
                "is a file; with the dask executor --output names a directory for part files", path=url
            )
        names = [os.path.basename(n.rstrip("/")) for n in fs.ls(path, detail=False)] if fs.isdir(path) else []
    except (PermissionError, FileNotFoundError) as e:
        raise DataError(f"cannot list the output directory ({e})", path=url) from None
    taken = sorted(n for n in names if n == SUCCESS or _PART_RE.match(n))
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise DataError(
            f"already holds a job's output ({shown}); choose a new --output directory, or remove "
            "that one yourself (adcore never deletes it)",
            path=url,
        )
    if is_local(clean):
        try:
            os.makedirs(local_path(clean), exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create the output directory ({e.strerror})", path=url) from None
        if not os.access(local_path(clean), os.W_OK | os.X_OK):
            raise DataError("the output directory is not writable", path=url)
    return OutputDir(clean, f)


def write_part(out: OutputDir, index: int, options: Mapping[str, Any], fill: Callable[[str], None]) -> str:
    """Publish part ``index`` whole: ``fill(path)`` writes it atomically at ``path``
    (:class:`~adcore_dask.parts.PartWriter`: a temporary name, then a rename).

    Locally ``path`` is the final name; for S3 it is a file in a private temporary
    directory, uploaded once complete.
    """
    if out.local:
        target = os.path.join(local_path(out.url), out.part_name(index))
        os.makedirs(os.path.dirname(target), exist_ok=True)  # a worker on another mount
        fill(target)
        return out.part_url(index)
    scratch = tempfile.mkdtemp(prefix="adcore-dask-")
    try:
        local = os.path.join(scratch, out.part_name(index))
        fill(local)
        fs, path = filesystem(out.part_url(index), options)
        fs.put_file(local, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out.part_url(index)


def write_success(out: OutputDir, options: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    """The marker readers wait for, with what the job wrote (parts, rows, skipped files)."""
    body = (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode()
    if out.local:
        target = os.path.join(local_path(out.url), SUCCESS)
        tmp = target + f".{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return
    fs, path = filesystem(f"{out.url}/{SUCCESS}", options)
    fs.pipe_file(path, body)


def remove_parts(out: OutputDir, options: Mapping[str, Any], indices: Iterable[int]) -> None:
    """Remove parts this job wrote (a failed job, or a skipped file's other partitions).

    One listing, then one delete per part present: a failed job of 10,000 partitions on S3
    does not send 10,000 existence checks.
    """
    wanted = {out.part_name(i) for i in indices}
    if not wanted:
        return
    fs, root = filesystem(out.url, options)
    with contextlib.suppress(FileNotFoundError, OSError):
        fs.invalidate_cache(root)
        present = [n for n in fs.ls(root, detail=False) if os.path.basename(n.rstrip("/")) in wanted]
        for name in present:
            with contextlib.suppress(FileNotFoundError, OSError):
                fs.rm_file(name)


def clean_temporaries(out: OutputDir) -> None:
    """Remove temporary part files a killed worker left behind (only our own hidden names)."""
    if not out.local:
        return  # S3 parts are uploaded from the worker's own temporary directory
    root = local_path(out.url)
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            if _TEMP_RE.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
