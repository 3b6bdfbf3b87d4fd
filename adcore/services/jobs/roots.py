"""Where jobs may read and write: ``ADCORE_JOB_ROOTS`` (local directories and ``s3://bucket``).

A job names files by URI, and the server runs it with its own rights, so every ``input`` and
``output`` is checked here before anything is enqueued: a path with a ``..`` segment, a path
outside every listed directory (``/etc/passwd``; symlinks are resolved first) or a bucket not
listed is refused with :class:`JobPathRefused` (HTTP 403, CLI exit 2). With no roots
configured, every job that names a path is refused: the safe default is to read nothing
until an operator says where jobs may read (``detect`` jobs, whose rows are inline, still run).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from adcore.errors import ParameterError

ROOTS_ENV = "ADCORE_JOB_ROOTS"


class JobPathRefused(ParameterError):
    """A job's input or output outside the allowed roots (or with ``..``): refused before enqueueing."""

    http_status = 403


@dataclass(frozen=True)
class JobRoots:
    """Allowed local directories (resolved) and S3 buckets."""

    directories: tuple[str, ...] = ()
    buckets: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> JobRoots:
        """``"/data/in,/data/out,s3://bucket"``: comma-separated; empty entries are ignored."""
        dirs: list[str] = []
        buckets: set[str] = set()
        for entry in (e.strip() for e in (text or "").split(",")):
            if not entry:
                continue
            if entry.lower().startswith("s3://"):
                bucket = entry[5:].split("/", 1)[0]
                if not bucket:
                    raise ParameterError(f"{ROOTS_ENV}: {entry!r} names no bucket")
                buckets.add(bucket)
            elif "://" in entry:
                raise ParameterError(f"{ROOTS_ENV}: only local directories and s3://bucket, got {entry!r}")
            else:
                dirs.append(os.path.realpath(os.path.expanduser(entry)))
        return cls(tuple(dirs), frozenset(buckets))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JobRoots:
        return cls.parse((os.environ if environ is None else environ).get(ROOTS_ENV))

    @property
    def configured(self) -> bool:
        return bool(self.directories or self.buckets)

    def check(self, uri: str, what: str) -> str:
        """``uri`` if a job may use it as ``what`` (``input``/``output``); else :class:`JobPathRefused`.

        Local paths come back absolute and resolved, so the worker reads what was checked.
        """
        if not isinstance(uri, str) or not uri.strip():
            raise ParameterError(f"{what} is empty")
        parts = uri.replace("\\", "/").split("/")
        if ".." in parts:
            raise JobPathRefused(f"{what} {uri!r}: '..' is not allowed in job paths")
        if not self.configured:
            raise JobPathRefused(
                f"{what} {uri!r}: jobs that read or write files are refused until {ROOTS_ENV} lists "
                "the allowed directories and s3:// buckets"
            )
        if "://" in uri:
            scheme, rest = uri.split("://", 1)
            bucket = rest.split("/", 1)[0]
            if scheme.lower() != "s3" or bucket not in self.buckets:
                raise JobPathRefused(f"{what} {uri!r}: not under an allowed root ({ROOTS_ENV})")
            return uri
        path = os.path.realpath(os.path.expanduser(uri))
        if not os.path.isabs(os.path.expanduser(uri)):
            raise JobPathRefused(f"{what} {uri!r}: job paths must be absolute")
        for root in self.directories:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return path
        raise JobPathRefused(f"{what} {uri!r}: not under an allowed root ({ROOTS_ENV})")


def checked_request(request: object, roots: JobRoots | None = None) -> object:
    """The request with its ``input``/``output`` checked and resolved (see :meth:`JobRoots.check`)."""
    from dataclasses import replace

    from adcore.services.jobs.model import JobRequest

    assert isinstance(request, JobRequest)
    roots = roots if roots is not None else JobRoots.from_env()
    spec = dict(request.spec)
    for what in ("input", "output"):
        if spec.get(what) is not None:
            spec[what] = roots.check(spec[what], what)
    return replace(request, spec=spec)
