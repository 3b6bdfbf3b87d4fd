"""Where artifact bytes live: a local directory (atomic files) or an S3-compatible bucket.

An index backend (SQLite, PostgreSQL) keeps the rows; one of these keeps the bytes. The
index row is only inserted after ``put`` has returned, so an artifact the index points
to is always complete; what a crash can leave behind is an unreferenced file, never a
referenced half-file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from adcore.errors import IntegrityError, StoreError, StoreUnavailableError


class ArtifactStore(Protocol):
    """Bytes by key. ``shared_keys`` says whether two saves can share one key (content addressing)."""

    shared_keys: bool

    def put(self, data: bytes, sha256: str, name: str) -> str: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old state or all of it, never part.

    Temp file in the same directory, fsync, rename over the target, fsync the directory
    (so the rename itself survives a power cut).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class LocalArtifacts:
    """Artifact files under one directory, one unique file per save.

    Keys are unique (``NAME/SHA16-RANDOM.pkl``) rather than content-addressed, so
    removing one version can never delete a file another version still uses.
    """

    shared_keys = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise IntegrityError(f"artifact key {key!r} points outside the store; refusing it")
        return path

    def put(self, data: bytes, sha256: str, name: str) -> str:
        key = f"{name}/{sha256[:16]}-{uuid.uuid4().hex[:12]}.pkl"
        try:
            write_atomic(self.root / key, data)
        except OSError as exc:
            raise StoreError(
                f"cannot write the model artifact under {self.root}: {exc.strerror or exc}"
            ) from exc
        return key

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise IntegrityError(f"artifact file {path} is missing; the model cannot be loaded") from exc
        except OSError as exc:
            raise StoreError(f"cannot read artifact {path}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the name's folder, once empty


class S3Artifacts:
    """Artifacts in an S3-compatible bucket under content-addressed keys ``PREFIX/sha256/HEX``.

    An S3 PUT is atomic (the object appears whole or not at all), and a content-addressed
    key means a retried or concurrent upload of the same bytes is harmless. The endpoint
    and credentials come from the standard AWS variables (``AWS_ENDPOINT_URL`` or
    ``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``), as for every AWS tool.

    Every call goes through the ``s3`` dependency of :mod:`adcore.services.resilience`
    (retries with jittered backoff, a circuit breaker per endpoint), so botocore's own
    retries are set to one attempt: one policy, not two multiplied. An endpoint that does
    not answer raises :class:`~adcore.errors.StoreUnavailableError`; a missing object, a
    denied request or a missing bucket stay the errors they are.
    """

    shared_keys = True

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"artifact location {url!r} must look like s3://bucket/prefix")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        import boto3  # the postgres extra; imported only when such a store is opened
        from botocore.config import Config

        from adcore.services import resilience

        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        retries = {"total_max_attempts": 1, "mode": "standard"}
        config = Config(retries=retries, connect_timeout=5, read_timeout=60)
        self.client: Any = boto3.client("s3", region_name=region, config=config)
        endpoint = urlparse(str(self.client.meta.endpoint_url))
        self.dependency = resilience.dependency("s3", endpoint.netloc or str(endpoint), is_transient)

    def _key(self, sha256: str) -> str:
        return "/".join(p for p in (self.prefix, "sha256", sha256) if p)

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        return StoreError(f"S3 {action} s3://{self.bucket}/{key} failed: {_one_line(exc)}")

    def _call(self, action: str, key: str, fn: Any, **kwargs: Any) -> Any:
        return self.dependency.call(
            lambda: fn(Bucket=self.bucket, Key=key, **kwargs),
            action=f"S3 {action} s3://{self.bucket}/{key}",
            error=StoreUnavailableError,
        )

    def _read_object(self, **where: Any) -> bytes:
        """GET and read the body in one attempt: a connection dropped mid-body is retried whole."""
        return bytes(self.client.get_object(**where)["Body"].read())

    def put(self, data: bytes, sha256: str, name: str) -> str:
        key = self._key(sha256)
        try:
            self._call("upload to", key, self.client.put_object, Body=data, Metadata={"model": name})
        except StoreUnavailableError:
            raise
        except Exception as exc:  # botocore's errors: credentials, endpoint, bucket
            raise self._fail("upload to", key, exc) from exc
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._call("download of", key, self._read_object)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if _error_code(exc) in {"NoSuchKey", "404"}:
                raise IntegrityError(
                    f"artifact s3://{self.bucket}/{key} is missing; the model cannot be loaded"
                ) from exc
            raise self._fail("download of", key, exc) from exc

    def exists(self, key: str) -> bool:
        try:
            self._call("lookup of", key, self.client.head_object)
            return True
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise self._fail("lookup of", key, exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._call("delete of", key, self.client.delete_object)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise self._fail("delete of", key, exc) from exc


#: S3 error codes that mean "the service is busy or failing, try again"
_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable"}
)


def is_transient(exc: BaseException) -> bool:
    """No connection, a timeout, a dropped response, a 5xx or a throttle: worth a retry."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = (exc.response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return int(status) >= 500 or _error_code(exc) in _TRANSIENT_CODES
    return False


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def open_artifacts(url: str) -> ArtifactStore:
    """``s3://bucket/prefix`` or ``file:///dir`` (a directory every machine mounts)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return S3Artifacts(url)
    if parsed.scheme == "file":
        return LocalArtifacts(Path(parsed.path))
    raise StoreError(f"unsupported artifact location {url!r}: use s3://bucket/prefix or file:///dir")
