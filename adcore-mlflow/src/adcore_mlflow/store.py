"""``mlflow://``: MLflow's model registry as an adcore model store.

A stored version is three MLflow things:

- a **logged model** (``models:/m-...``) in the experiment ``adcore`` (``?experiment=``),
  whose artifacts are an adcore-flavored MLflow model (:mod:`adcore_mlflow.flavor`): the
  adcore artifact bytes as ``model.adcore``, so ``mlflow.pyfunc.load_model('models:/NAME/1')``
  and ``mlflow models serve`` work on every version;
- a **registered model version** of NAME whose **tags** carry the ModelRecord
  (``adcore.record``: JSON without version and time, which MLflow assigns), so ``get``
  and ``list`` rebuild records from one registry query;
- the version's **aliases**, which ``get(name, "champion")`` resolves.

The ModelStore guarantees, and how MLflow gives them:

- *durable before visible*: the artifacts are uploaded (local files fsynced) before the
  version is created, and MLflow creates a version and its tags in one transaction;
- *distinct, consecutive versions*: MLflow's registry allocates ``max(version) + 1`` in the
  version's transaction and retries on a unique-key clash. On a SQLite database two
  writers can still collide (SQLite answers "database is locked" to a lock upgrade), so
  for ``sqlite`` URLs adcore serialises its own saves with an exclusive ``flock`` on
  ``<database>.adcore-lock`` (one machine: SQLite is a local file anyway), and for every
  backend retries the creation when the registry gives up;
- *never reused*: MLflow keeps a deleted version's row (stage ``Deleted_Internal``), so
  ``max(version)`` still counts it. ``remove`` therefore deletes versions, never the
  registered model, which would reset the numbering;
- *rows before artifacts*: ``remove`` deletes the versions first, then the logged
  model's artifacts, so a crash leaves stray files, never a listed version that cannot load.

The core checks each artifact's size and SHA-256 (recorded in the tags) before
unpickling, and :mod:`adcore_mlflow.flavor` does the same when MLflow itself loads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

import mlflow
from adcore.errors import IntegrityError, ModelNotFoundError, StoreError, StoreUnavailableError
from adcore.services import resilience
from adcore.services.registry import ModelRecord, model_not_found, redact_url
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model as MlflowModel
from mlflow.protos.databricks_pb2 import ErrorCode
from mlflow.tracking import MlflowClient

from adcore_mlflow import flavor
from adcore_mlflow.logs import quiet_mlflow_logging
from adcore_mlflow.urls import Target, parse_store_url

RECORD_TAG = "adcore.record"
PARTS_TAG = "adcore.record.parts"
TAG_LIMIT = 100_000  # MLflow's limit on a model-version tag value
PUBLISH_ATTEMPTS = 8
PROBE_TIMEOUT_S = 5.0
#: MLflow's HTTP retry settings when the user set none: its defaults (7 retries, backoff factor 2)
#: hold a request for about four minutes on a server that is down; adcore's circuit breaker
#: (adcore.services.resilience) takes over from there
CLIENT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


class MlflowStore:
    """The ``ModelStore`` over an MLflow tracking server or database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.target: Target = parse_store_url(url)
        quiet_mlflow_logging()
        self.tracking_uri = self.target.tracking_uri or mlflow.get_tracking_uri()
        self.registry_uri = self.target.registry_uri or self.tracking_uri
        self.where = f"MLflow at {redact_url(self.tracking_uri)}"
        where = urlsplit(self.tracking_uri)
        self.dependency = resilience.dependency(
            "mlflow", where.netloc if self.target.is_http else "local", _is_outage
        )
        if self.target.is_http:
            for name, value in CLIENT_RETRIES.items():  # MLflow's own: 7 retries, about 4 minutes
                os.environ.setdefault(name, value)
            with self.dependency.attempt("reaching MLflow", StoreUnavailableError):
                _probe(self.tracking_uri)
        self.artifacts = MlflowArtifacts(self.tracking_uri, self.registry_uri)
        self._experiment_id: str | None = None
        # MLflow creates (or migrates) a database's tables on first connection; processes doing
        # that at once on one new SQLite file race ("duplicate column name"), so the first
        # touch holds the save lock too.
        with self._calls("opening the database"), self._save_lock():
            self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
            if _sqlite_path(self.registry_uri):
                self.client.search_registered_models(max_results=1)

    def __repr__(self) -> str:
        return f"MlflowStore({redact_url(self.url)!r})"

    # ------------------------------------------------------------------------ ModelStore
    def add(self, record: ModelRecord, artifact: bytes) -> ModelRecord:
        with self._calls("saving " + record.name), _global_uris(self.tracking_uri, self.registry_uri):
            logged = self.client.create_logged_model(
                experiment_id=self._experiment(),
                name=record.name,
                model_type="adcore",
                tags={"adcore.algorithm": record.algorithm, "adcore.sha256": record.sha256},
            )
            key = f"{logged.artifact_location.rstrip('/')}/{flavor.DATA_FILE}"
            stored = record.replace(artifact=key)
            try:
                with tempfile.TemporaryDirectory(prefix="adcore-mlflow-") as tmp:
                    local = Path(tmp) / "model"
                    mlflow_model = MlflowModel(
                        artifact_path=logged.artifact_location,
                        model_uuid=logged.model_id,
                        model_id=logged.model_id,
                    )
                    flavor.save_artifact(artifact, stored, local, mlflow_model)
                    self.client.log_model_artifacts(logged.model_id, str(local))
                _fsync_local(logged.artifact_location)
                version = self._publish(record.name, logged.model_id, stored)
            except BaseException:
                with contextlib.suppress(Exception):  # nothing points at it: best effort
                    self.client.delete_logged_model(logged.model_id)
                raise
            with contextlib.suppress(MlflowException):
                self.client.finalize_logged_model(logged.model_id, "READY")
        return self._record(version)

    def get(self, name: str, version: int | str | None = None) -> ModelRecord:
        with self._calls(f"reading {name}"):
            if version is None:
                records = self.list(name)
                if not records:
                    raise model_not_found(name, None, [], self.url)
                return records[-1]
            try:
                if isinstance(version, str):
                    found = self.client.get_model_version_by_alias(name, version)
                else:
                    found = self.client.get_model_version(name, str(version))
            except MlflowException as exc:
                if _code(exc) != "RESOURCE_DOES_NOT_EXIST" and "not found" not in exc.message.lower():
                    raise
                found = None
            if found is None or (
                RECORD_TAG not in (found.tags or {}) and PARTS_TAG not in (found.tags or {})
            ):
                raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
            return self._record(found)

    def list(self, name: str | None = None) -> list[ModelRecord]:
        with self._calls("listing models"):
            query = f"name = '{name}'" if name is not None else None
            found: list[ModelVersion] = []
            token = None
            while True:
                page = self.client.search_model_versions(query, max_results=1000, page_token=token)
                found.extend(page)
                token = getattr(page, "token", None)
                if not token:
                    break
        records = [self._record(v) for v in found if _is_adcore(v)]
        return sorted(records, key=lambda r: (r.name, r.version))

    def read_artifact(self, record: ModelRecord) -> bytes:
        return self.artifacts.get(record.artifact)

    def remove(self, name: str, version: int | str | None = None) -> list[ModelRecord]:
        targets = self.list(name) if version is None else [self.get(name, version)]
        if not targets:
            raise model_not_found(name, version, [], self.url)
        removed = []
        with self._calls(f"removing {name}"):
            for record in targets:  # rows first: the versions stop being listed
                try:
                    self.client.delete_model_version(record.name, str(record.version))
                except MlflowException as exc:
                    if _code(exc) != "RESOURCE_DOES_NOT_EXIST":
                        raise
                    continue  # removed concurrently by someone else
                removed.append(record)
            for record in removed:  # then the artifacts: a crash here leaves stray files only
                self.artifacts.delete(record.artifact)
        if not removed:
            raise model_not_found(name, version, [r.version for r in self.list(name)], self.url)
        return removed

    def close(self) -> None:
        """Nothing to release: MLflow's clients hold pooled connections for the process."""

    # --------------------------------------------------------------------------- helpers
    def _experiment(self) -> str:
        """The experiment logged models go to, created on first use (concurrently: either wins)."""
        if self._experiment_id is None:
            name = self.target.experiment
            found = self.client.get_experiment_by_name(name)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        name, artifact_location=self.target.artifact_location
                    )
                except MlflowException as exc:
                    if _code(exc) != "RESOURCE_ALREADY_EXISTS" and "already exists" not in exc.message:
                        raise
                    found = self.client.get_experiment_by_name(name)
            if self._experiment_id is None:
                if found is None:
                    raise StoreError(f"{self.where}: the experiment {name!r} could not be created")
                self._experiment_id = str(found.experiment_id)
        return self._experiment_id

    def _publish(self, name: str, model_id: str, record: ModelRecord) -> ModelVersion:
        """Create the next version of ``name`` with the record's tags: the moment it becomes visible."""
        tags = record_tags(record)
        with self._save_lock():
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if _code(exc) != "RESOURCE_ALREADY_EXISTS" and "already exists" not in exc.message:
                    raise
            for attempt in range(PUBLISH_ATTEMPTS):
                try:
                    return self.client.create_model_version(
                        name, source=f"models:/{model_id}", tags=tags, model_id=model_id, await_creation_for=0
                    )
                except MlflowException as exc:
                    text = exc.message.lower()
                    busy = "giving up" in text or "locked" in text or "integrityerror" in text
                    if not busy or attempt == PUBLISH_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _save_lock(self) -> Iterator[None]:
        """An exclusive lock for saves on a SQLite database (see the module docstring)."""
        path = _sqlite_path(self.registry_uri) or _sqlite_path(self.tracking_uri)
        if path is None:
            yield
            return
        import fcntl

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.adcore-lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released by the kernel if we are killed
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _record(self, version: ModelVersion) -> ModelRecord:
        data = json.loads(_joined_tag(version.tags or {}))
        created = datetime.fromtimestamp(int(version.creation_timestamp) / 1000, tz=timezone.utc)
        data.update(version=int(version.version), created_at=created.isoformat(timespec="seconds"))
        return ModelRecord.from_dict(data)

    @contextlib.contextmanager
    def _calls(self, doing: str) -> Iterator[None]:
        """MLflow's exceptions as adcore's: one line, the URL without its password; an unreachable
        server counts towards the ``mlflow`` circuit breaker, which refuses at once while open."""
        with self.dependency.attempt(doing, StoreUnavailableError), self._translated(doing):
            yield

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (ModelNotFoundError, IntegrityError, StoreError):
            raise
        except MlflowException as exc:
            message = " ".join(str(exc.message).split())
            if _unreachable(message):
                raise StoreUnavailableError(
                    f"{self.where} is unavailable ({doing}): {message[:300]}"
                ) from exc
            raise StoreError(f"{self.where}: {doing} failed: {message[:300]}") from exc
        except OSError as exc:
            raise StoreUnavailableError(f"{self.where} is unavailable ({doing}): {exc}") from exc


class MlflowArtifacts:
    """Artifact bytes by URI (what ``ModelRecord.artifact`` holds), for any MLflow artifact store."""

    def __init__(self, tracking_uri: str, registry_uri: str) -> None:
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri

    def get(self, key: str) -> bytes:
        local = _local_path(key)
        if local is not None:
            try:
                return local.read_bytes()
            except FileNotFoundError as exc:
                raise IntegrityError(f"artifact {key} is missing; the model cannot be loaded") from exc
        from mlflow.artifacts import download_artifacts

        with tempfile.TemporaryDirectory(prefix="adcore-mlflow-") as tmp:
            try:
                path = download_artifacts(
                    artifact_uri=key,
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                    registry_uri=self.registry_uri,
                )
            except MlflowException as exc:
                raise IntegrityError(
                    f"artifact {key} cannot be read ({exc.message}); not loading it"
                ) from exc
            return Path(path).read_bytes()

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` (the store never rewrites an artifact; tests use this to tamper)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        parent, _, base = key.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="adcore-mlflow-") as tmp:
            (Path(tmp) / base).write_bytes(data)
            repo = get_artifact_repository(parent, tracking_uri=self.tracking_uri)
            repo.log_artifact(str(Path(tmp) / base))

    def delete(self, key: str) -> None:
        """Delete the logged model directory holding ``key`` (missing is fine: already gone)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        parent = key.rpartition("/")[0]
        with contextlib.suppress(MlflowException, FileNotFoundError):
            get_artifact_repository(parent, tracking_uri=self.tracking_uri).delete_artifacts()


# ------------------------------------------------------------------------------ functions
def open_store(url: str) -> MlflowStore:
    """The ``register_storage`` factory for ``mlflow://`` and ``mlflow+SCHEME://`` URLs."""
    return MlflowStore(url)


def record_tags(record: ModelRecord) -> dict[str, str]:
    """The version's tags: the record as JSON (split in parts past MLflow's tag size), plus
    a few readable ones for MLflow's UI and search (``tags.`adcore.algorithm` = 'pyod:iforest'``)."""
    body = {k: v for k, v in record.to_dict().items() if k not in ("ref", "version", "created_at")}
    text = json.dumps(body, allow_nan=False, separators=(",", ":"), default=str)
    tags = {
        "adcore.algorithm": record.algorithm,
        "adcore.sha256": record.sha256,
        "adcore.threshold": repr(float(record.threshold)),
    }
    if len(text) <= TAG_LIMIT:
        tags[RECORD_TAG] = text
    else:
        parts = [text[i : i + TAG_LIMIT] for i in range(0, len(text), TAG_LIMIT)]
        tags[PARTS_TAG] = str(len(parts))
        tags.update({f"{RECORD_TAG}.{i}": part for i, part in enumerate(parts)})
    return tags


def _joined_tag(tags: dict[str, str]) -> str:
    if RECORD_TAG in tags:
        return tags[RECORD_TAG]
    return "".join(tags[f"{RECORD_TAG}.{i}"] for i in range(int(tags[PARTS_TAG])))


def _is_adcore(version: ModelVersion) -> bool:
    """Versions registered by something other than adcore share the registry; they are skipped."""
    tags = version.tags or {}
    return RECORD_TAG in tags or PARTS_TAG in tags


def _code(exc: MlflowException) -> str:
    """The error's code by name (``RESOURCE_DOES_NOT_EXIST``), whether MLflow gave a name or a number."""
    code = exc.error_code
    if isinstance(code, int):
        return ErrorCode.Name(code)
    return str(code)


def _is_outage(exc: BaseException) -> bool:
    """An unreachable server (not yet counted by an inner call under the same breaker)."""
    return isinstance(exc, StoreUnavailableError) and getattr(exc, "dependency", None) != "mlflow"


def _unreachable(message: str) -> bool:
    text = message.lower()
    return any(
        s in text for s in ("connection refused", "max retries exceeded", "failed to establish", "timed out")
    )


def _probe(tracking_uri: str) -> None:
    """Fail fast on a server that does not answer: MLflow's client would retry for minutes."""
    health = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=PROBE_TIMEOUT_S) as response:
            response.read(64)
    except urllib.error.HTTPError:
        return  # it answers: a proxy without /health is still a server
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreUnavailableError(
            f"the MLflow tracking server {redact_url(tracking_uri)} is unreachable: {reason}"
        ) from None


def _sqlite_path(uri: str) -> str | None:
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///") :].split("?", 1)[0])
    return path or None


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(unquote(urlsplit(uri).path))
    if "://" not in uri and ":" not in uri.split("/", 1)[0]:
        return Path(uri)
    return None


def _fsync_local(location: str) -> None:
    """fsync a local artifact directory's files and folders (MLflow copies without fsync)."""
    root = _local_path(location)
    if root is None or not root.is_dir():
        return
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _global_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """MLflow's global URIs for the duration of a save, then exactly what they were.

    MLflow's SQL registry resolves ``models:/m-...`` sources with a client built from the
    *global* tracking URI, so a store naming another database than the process default
    must set it while it saves. What is restored is MLflow's raw setting (``None`` when
    unset), not ``get_tracking_uri()``'s resolved default, which would pin it for good.
    """
    from mlflow.environment_variables import MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {v.name: os.environ.get(v.name) for v in (MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI)}
    previous = (
        getattr(tracking_utils, "_tracking_uri", None),
        getattr(registry_utils, "_registry_uri", None),
    )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
