"""The model store service: what a stored model is, how stores are found, how artifacts are trusted.

A model store keeps an index of :class:`ModelRecord` rows and one artifact (a pickle)
per row. Backends are plugins: ``register_storage`` registers a URL scheme and a
``factory(url)`` returning an object that satisfies :class:`ModelStore`. This module
holds what every backend shares, so a third-party backend gets the same guarantees:

- :func:`open_store` picks the backend by URL scheme (``--store``, ``ADCORE_STORE``, or the
  embedded default under ``ADCORE_HOME``);
- :func:`verify_artifact` checks size and SHA-256 against the index before anything is
  unpickled (a tampered or truncated artifact is refused with ``IntegrityError``);
- :func:`parse_model_ref` reads ``name`` / ``name@version`` / ``name@latest`` / ``name@alias``.

An alias (``payments@champion``) is a backend's movable pointer to one version (MLflow's
registry has them); backends without aliases refuse one with :func:`refuse_alias`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from adcore.errors import (
    IntegrityError,
    ModelNotFoundError,
    ParameterError,
    StoreError,
    StoreNotFoundError,  # noqa: F401  (re-exported: stores raise them from here)
    StoreUnavailableError,  # noqa: F401
)

MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")  # always used with fullmatch
VERSION_RE = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also accepts '²' and '٣'
#: an alias after '@': ASCII, a letter first (so it never reads as a version), MLflow's 255 at most
ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,254}")
MAX_VERSION = 2**63 - 1  # versions are stored as signed 64-bit integers (SQLite, PostgreSQL bigint)
STORE_ENV = "ADCORE_STORE"
HOME_ENV = "ADCORE_HOME"


@dataclass(frozen=True)
class ModelRecord:
    """One stored model version: everything needed to trust, audit and score with it.

    ``feature_names`` is ``None`` when the training data had no real column names (an
    array, a header-less CSV); then only the feature count is checked at scoring time.
    ``read_options`` are the reading choices made at fit (``columns``, ``header``,
    ``nan``) so ``score`` reads new files the same way. ``artifact`` is the backend's key
    for the pickle; ``sha256``/``size`` are checked before it is loaded.
    """

    name: str
    version: int
    algorithm: str
    params: dict[str, Any]
    threshold: float
    threshold_method: str
    contamination: float
    seed: int | None
    n_samples: int
    n_features: int
    feature_names: list[str] | None
    dtypes: list[str]
    read_options: dict[str, Any] = field(default_factory=dict)
    score_quantiles: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0
    artifact: str = ""
    created_at: str = ""

    @property
    def ref(self) -> str:
        """``name@version``: the reference that always means this exact model."""
        return f"{self.name}@{self.version}"

    def replace(self, **changes: Any) -> ModelRecord:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ref"] = self.ref
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@runtime_checkable
class ModelStore(Protocol):
    """What a storage backend provides; ``factory(url)`` from ``register_storage`` returns one.

    Guarantees a backend must give (the conformance suite in tests/test_registry.py checks
    them): ``add`` makes the artifact durable before the index row becomes visible, and
    the row appears in one transaction, so a crash leaves either a whole model or none;
    concurrent ``add`` calls for one name get distinct, consecutive versions; a version
    number is never reused, even after ``remove``.
    """

    url: str

    def add(self, record: ModelRecord, artifact: bytes) -> ModelRecord:
        """Store ``artifact`` and index ``record`` under the next version of ``record.name``.

        ``record.sha256`` and ``record.size`` are already set by the caller; the backend
        fills ``version``, ``artifact`` (its key) and ``created_at`` and returns the result.
        """
        ...

    def get(self, name: str, version: int | str | None = None) -> ModelRecord:
        """The record of ``name@version``, or of the latest version; ``ModelNotFoundError`` if none.

        A ``str`` version is an alias (``payments@champion``): a backend with aliases resolves
        it, one without raises :func:`refuse_alias`'s ``ParameterError``.
        """
        ...

    def list(self, name: str | None = None) -> list[ModelRecord]:
        """Records ordered by name, then version; only one name's when ``name`` is given."""
        ...

    def read_artifact(self, record: ModelRecord) -> bytes:
        """The raw artifact bytes (unverified: :func:`verify_artifact` checks them)."""
        ...

    def remove(self, name: str, version: int | str | None = None) -> list[ModelRecord]:
        """Delete one version, or every version of ``name``; return what was removed.

        A ``str`` version is an alias, as for :meth:`get` (``models rm payments@champion``).
        """
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- references
def check_model_name(name: str) -> str:
    """A model name: letters, digits, '_', '-', '.', at most 128 characters, no '@'."""
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise ParameterError(
            f"invalid model name {name!r}: use letters, digits, '_', '-', '.' (max 128), starting with "
            "a letter or digit"
        )
    return name


def parse_model_ref(ref: str) -> tuple[str, int | str | None]:
    """``"payments"`` -> (``payments``, None = latest); ``"payments@3"`` -> (``payments``, 3);
    ``"payments@champion"`` -> (``payments``, ``"champion"``): an alias, resolved by the store.

    An alias starts with a letter, so ``@3`` is always a version and ``@v3`` always an alias;
    ``latest`` keeps its meaning, and its other spellings (``@Latest``) are refused rather
    than read as an alias that MLflow would treat as latest anyway. The reference is taken
    as given (no stripping): ``"trail\\n"`` is not ``"trail"``, so a command such as
    ``models rm`` can never act on a model other than the one named.
    """
    name, sep, version = str(ref).partition("@")
    check_model_name(name)
    if not sep or version == "latest":
        return name, None
    if ALIAS_RE.fullmatch(version) and version.lower() != "latest":
        return name, version
    return name, parse_version(version, ref)


def refuse_alias(version: int | str | None, what: str) -> int | None:
    """``version`` unchanged unless it is an alias, which a backend without aliases refuses.

    ``what`` names the backend (``"the file store"``), so the one-line error says where
    aliases are missing and what to type instead.
    """
    if isinstance(version, str):
        raise ParameterError(f"{what} has no aliases (@{version}); use NAME@VERSION")
    return version


def parse_version(text: str, ref: str) -> int:
    """The version after '@': ASCII digits, 1 <= v < 2**63, so every store can hold and compare it.

    Python's ``int()`` and ``str.isdigit`` accept Unicode digits ('²', '٣') and any size; a store
    would crash on them, so they are refused here as the user's mistake they are.
    """
    if not VERSION_RE.fullmatch(text) or not 1 <= int(text) <= MAX_VERSION:
        raise ParameterError(
            f"invalid model reference {ref!r}: the version after '@' must be a number >= 1 "
            "(ASCII digits, below 2**63), 'latest' or an alias (a letter, then letters, digits, '_', '-')"
        )
    return int(text)


# ------------------------------------------------------------------------------ stores
def default_store_url() -> str:
    """The embedded store: ``$ADCORE_HOME/models`` (default: the user data dir for adcore)."""
    home = os.environ.get(HOME_ENV)
    if not home:
        import platformdirs

        home = platformdirs.user_data_dir("adcore", appauthor=False)
    return str(Path(home).expanduser() / "models")


def store_url(url: str | None = None) -> str:
    """The URL in effect: the argument, else ``$ADCORE_STORE``, else the embedded default."""
    return url or os.environ.get(STORE_ENV) or default_store_url()


def url_scheme(url: str) -> str:
    """``postgresql://...`` -> ``postgresql``; a plain path is a ``file`` store."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*)://", url)
    return match.group(1).lower() if match else "file"


def open_store(url: str | None = None, *, create: bool = True) -> ModelStore:
    """Open the model store at ``url`` with the backend registered for its scheme.

    The plugin host resolves the scheme, so an unknown one lists the installed schemes
    (or names the distribution providing it), and a missing driver says what to install.
    ``create=False`` is for commands that only read or remove: a backend whose factory takes a
    ``create`` keyword (the core's file store) then raises :class:`StoreNotFoundError` instead
    of creating a missing store; a factory without it (``factory(url)``, the plugin contract)
    is called as before.
    """
    from adcore.plugins import get_host

    resolved = store_url(url)
    registration = get_host().resolve_scheme("storage", resolved, error=StoreError)
    factory = registration.load()
    store = factory(resolved) if create or not _takes_create(factory) else factory(resolved, create=False)
    if not isinstance(store, ModelStore):
        raise StoreError(
            f"storage backend {registration.qualified_name} returned {type(store).__name__}, "
            "which is not a ModelStore"
        )
    return store


def _takes_create(factory: Any) -> bool:
    """Whether a storage factory accepts ``create=`` (optional: the contract is ``factory(url)``)."""
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
    return "create" in params  # named explicitly: **options may mean something else to a backend


_SECRET_KEYS = frozenset({"password", "sslpassword", "passwd", "pwd", "secret", "token"})
_CONNINFO_SECRET = re.compile(
    r"(?i)\b((?:ssl)?password|passwd|pwd)(\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:\\.|\S)*)"
)


_HOST = r"(?:[\w.~%-]+|\[[\w.:%]+\])(?::\d*)?"
#: hosts (``db``, ``db:5432,db2``, ``[::1]``), then the path, a ``?key=`` query, or the end
_HOSTS_THEN_PATH = re.compile(rf"{_HOST}(?:,{_HOST})*(?:/|\?[\w.%-]+=|$)")


def _userinfo_end(rest: str) -> int:
    """Where ``user:password`` ends (its ``@``) in a URL after ``scheme://``; -1 without a password.

    The first ``@`` after ``user:`` that is followed by what can only be hosts (``db``,
    ``db:5432,db2``, ``[::1]``) and then the path, query or end: a password's unescaped
    ``/``, ``@``, ``?`` or ``#`` stays inside the mask. With no such ``@``, the last one.
    """
    colon = rest.find(":")
    if colon < 0 or "@" not in rest[colon:] or re.search(r"[/?#=&;@]", rest[:colon]):
        return -1
    ats = [i for i in range(colon, len(rest)) if rest[i] == "@"]
    for at in ats:
        if _HOSTS_THEN_PATH.match(rest, at + 1):
            return at
    return ats[-1]


def redact_url(url: str) -> str:
    """The URL (or libpq ``key=value`` conninfo) without any password, for messages and listings.

    Masks the userinfo password and every password-like query parameter, whatever their
    case or percent-encoding. The userinfo is taken up to the *last* ``@`` before the
    query, not split the way ``urllib.parse.urlsplit`` does: a password holding an
    unescaped ``/`` or ``@`` would otherwise leak in part. Masking too much is harmless;
    too little is not.
    """
    import urllib.parse

    scheme, sep, rest = url.partition("://")
    if not sep:
        return _CONNINFO_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", url)
    at = _userinfo_end(rest)
    if at >= 0:
        rest = f"{rest[: rest.index(':')]}:***{rest[at:]}"
    query_at = rest.find("?") if "?" in rest else len(rest)
    head, query = rest[:query_at], rest[query_at:]
    if query.startswith("?"):
        query, hash_, fragment = query[1:].partition("#")
        pairs = [part.partition("=") for part in re.split(r"([&;])", query)]
        masked = "".join(
            f"{key}={'***' if urllib.parse.unquote_plus(key).strip().lower() in _SECRET_KEYS else value}"
            if eq
            else key
            for key, eq, value in pairs
        )
        query = f"?{masked}{hash_}{fragment}"
    return f"{scheme}://{head}{query}"


def model_not_found(
    name: str, version: int | str | None, versions: list[int], url: str
) -> ModelNotFoundError:
    """The error for a missing model (or version, or alias), listing the versions that do exist."""
    where = f"in the store {redact_url(url)}"
    if not versions:
        return ModelNotFoundError(f"no model named {name!r} {where}; 'adcore models' lists the stored models")
    listed = ", ".join(str(v) for v in sorted(versions))
    missing = f"alias {version!r}" if isinstance(version, str) else f"version {version}"
    return ModelNotFoundError(f"model {name!r} has no {missing} {where}; its versions: {listed}")


# --------------------------------------------------------------------------- integrity
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_artifact(record: ModelRecord, data: bytes) -> bytes:
    """Refuse an artifact whose size or SHA-256 differs from the index; return it unchanged.

    Artifacts are pickles, and unpickling runs code: this check is what keeps a file
    altered behind the index's back from ever being loaded.
    """
    if len(data) != record.size:
        state = "truncated" if len(data) < record.size else "longer than recorded"
        raise IntegrityError(
            f"model {record.ref}: artifact is {state} ({len(data)} bytes, the index says {record.size}); "
            "refusing to load it"
        )
    digest = sha256_hex(data)
    if digest != record.sha256:
        raise IntegrityError(
            f"model {record.ref}: artifact checksum mismatch (sha256 {digest[:16]}..., the index says "
            f"{record.sha256[:16]}...); it was modified after saving: refusing to load it"
        )
    return data


def utc_now() -> str:
    """ISO 8601 UTC timestamp with seconds (what ``created_at`` holds)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")

