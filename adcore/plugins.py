"""The plugin host: the one place that loads plugins, calls their hooks and resolves names.

Plugins are found through the ``adcore`` entry-point group and registered with pluggy;
the core's own features are an ordinary plugin named ``core``, registered the same way
(after the entry points, like llm). Unlike pluggy's ``load_setuptools_entrypoints``, every
step that runs plugin code (import, validation, each hook call, each ``register`` call)
is guarded per plugin: a broken plugin is reported by ``adcore plugins`` and everything
else keeps working. ``ADCORE_PLUGINS_STRICT=1`` turns those reports into errors while
developing a plugin.

Every hook is called through :meth:`PluginHost.call_hook` (one plugin at a time, a failure
reported against that plugin); every name is resolved by :meth:`PluginHost.resolve` and
every URL scheme by :meth:`PluginHost.resolve_scheme`, so an unknown name reads the same
whatever the port: "did you mean", the installed choices, or which distribution to
``pip install``.

Environment switches (read when the host loads):

- ``ADCORE_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points, only the built-ins.
- ``ADCORE_PLUGINS=a,b``: load only these entry-point plugins.
- ``ADCORE_DISABLE_PLUGINS=a,b``: skip these entry-point plugins.
- ``ADCORE_PLUGINS_STRICT=1``: raise ``PluginError`` instead of reporting.
- ``ADCORE_PREFER=sklearn,pyod``: which plugin wins a name (or scheme) provided by several.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from adcore import hookspecs
from adcore.errors import (
    AdcoreError,
    MissingDependencyError,
    ParameterError,
    PluginError,
    UnknownAlgorithmError,
)
from adcore.hookspecs import PORTS, Port

CORE_PLUGIN = "core"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # used with fullmatch: no newline slips by
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_TRUE = {"1", "true", "yes", "on"}
_SWITCHES = "ADCORE_PLUGINS, ADCORE_DISABLE_PLUGINS or ADCORE_DISABLE_PLUGIN_AUTOLOAD"

#: What the plugin distributions in this repository register: distribution -> (entry-point
#: name, {port kind: names}). Only read to answer an unknown name with the distribution to
#: install; tests/test_plugin_providers.py fails when it differs from what they really register.
KNOWN_PROVIDERS: dict[str, tuple[str, dict[str, str]]] = {
    "adcore-dask": ("dask", {"executor": "dask"}),
    "adcore-kafka": ("kafka", {"messaging": "kafka"}),
    "adcore-mlflow": ("mlflow", {"storage": "mlflow", "monitor": "mlflow"}),
    "adcore-pyod": (
        "pyod",
        {
            "detector": "abod ae1svm alad anogan auto-encoder cblof cd cof copod deep-svdd dif ecod "
            "feature-bagging gmm hbos hdbscan iforest inne kde knn kpca lmdd loci loda lof lunar mcd "
            "mo-gaal ocsvm pca qmcd rgraph rod sampling so-gaal so-gaal-new sod sos suod vae"
        },
    ),
    "adcore-sklearn": ("sklearn", {"detector": "elliptic iforest lof ocsvm sgd-ocsvm"}),
    "adcore-torch": ("torch", {"detector": "autoencoder deepsvdd seq-autoencoder vae"}),
}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


# pip names whose import name is not the pip name with "-" read as "_"
_IMPORT_NAMES = {"scikit-learn": "sklearn", "pillow": "PIL", "pyyaml": "yaml", "opencv-python": "cv2"}


def _importable(requirement: str) -> bool:
    """Whether a ``needs`` entry (a pip name such as ``torch`` or ``psycopg[binary]``) is importable.

    Checked with ``find_spec``, which imports nothing. The import name is the pip name with
    ``-`` read as ``_`` (or a well-known exception such as scikit-learn -> sklearn).
    """
    import importlib.util

    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    module = _IMPORT_NAMES.get(name.lower(), name.replace("-", "_"))
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_reference(reference: str) -> Any:
    """Import ``"package.module:attr"``: the lazy form of a factory, as plugins register them.

    Public (``adcore.resolve_reference``) so that a plugin which builds a class only known
    by reference (adcore-pyod's fit-time adapters) imports it the way the host does.
    """
    module_name, _, attr = reference.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def url_scheme(url: str) -> str:
    """``postgresql://...`` -> ``postgresql``; anything without ``scheme://`` is a ``file`` path."""
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else "file"


def _redact(url: str) -> str:
    """The URL without a password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _did_you_mean(name: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    return difflib.get_close_matches(name, sorted(set(candidates)), n=n, cutoff=0.6)


# ------------------------------------------------------------- registration keywords
def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _names(key: str, value: Any) -> tuple[str, ...]:
    """A name or several: ``"torch"`` and ``("torch",)`` both mean one package."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        names = tuple(value)
        if all(isinstance(n, str) for n in names):
            return names
    raise ValueError(f"{key} must be a string or a list of strings, got {value!r}")


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{key} must be a dict with string keys, got {value!r}")
    return dict(value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be True or False, got {value!r}")
    return value


def _endpoint_kind(key: str, value: Any) -> str:
    parts = _text(key, value).split("+")
    if not parts or not set(parts) <= {"source", "sink"}:
        raise ValueError(f"{key} must be 'source', 'sink' or 'source+sink', got {value!r}")
    return "+".join(sorted(set(parts), reverse=True))  # "source+sink" whichever order was given


def _event_types(key: str, value: Any) -> tuple[str, ...]:
    from adcore.domain.events import check_event_types

    try:
        return tuple(sorted(check_event_types(value, who=key) or ()))
    except AdcoreError as exc:
        raise ValueError(str(exc)) from None


def _unchecked(key: str, value: Any) -> Any:
    """``params`` is checked where it is read (building its model imports pydantic)."""
    return value


#: How each declared keyword's value is checked (and normalised) when it is registered.
#: tests/test_hookspecs.py fails when a keyword declared in hookspecs.PORTS has no entry.
KEYWORD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "summary": _text,
    "needs": _names,
    "install": _text,
    "extra": _mapping,
    "params": _unchecked,
    "tags": _names,
    "heavy_modules": _names,
    "xfail_checks": _mapping,
    "slow": _flag,
    "test_params": _mapping,
    "kind": _endpoint_kind,
    "types": _event_types,
}


def check_keywords(port: Port, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata with every value checked, or ``ValueError`` naming the first bad keyword.

    An undeclared keyword is refused with the close match, so a typo (``xfail_check=``)
    cannot be silently ignored; a plugin's own metadata goes in ``extra={...}``.
    """
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key not in port.keywords:
            close = _did_you_mean(key, port.keywords)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"accepted: {', '.join(sorted(port.keywords))}; keep your own metadata in extra={{...}}"
            )
            raise ValueError(f"unknown keyword {key!r} ({hint})")
        out[key] = None if value is None else KEYWORD_CHECKS[key](key, value)
    return out


# ----------------------------------------------------------------------- providers
def _normalise_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def known_providers(kind: str, name: str) -> list[str]:
    """The distributions of this repository that register ``name`` (bare or qualified) in ``kind``."""
    plugin, _, bare = name.rpartition(":")
    found = []
    for dist, (entry_point, registers) in KNOWN_PROVIDERS.items():
        if plugin and plugin != entry_point:
            continue
        if bare in registers.get(kind, "").split():
            found.append(dist)
    return found


def provider_hint(
    providers: list[str],
    installed: Collection[str] = (),
    loaded: Collection[str] = (),
    broken: Collection[str] = (),
) -> str:
    """``": it is provided by adcore-pyod (pip install adcore-pyod) or ..."``; "" when none.

    ``installed``, ``loaded`` and ``broken`` are distribution names: installing again does
    not help a distribution that is installed but was switched off, failed to load, or is
    an older version without the name.
    """
    if not providers:
        return ""
    phrases = []
    for dist in providers:
        if dist in broken:
            phrases.append(f"{dist} (installed, but it failed to load: see 'adcore plugins')")
        elif dist in loaded:
            phrases.append(f"{dist} (installed, but this version lacks it: pip install -U {dist})")
        elif dist in installed:
            phrases.append(f"{dist} (installed, not loaded)")
        else:
            phrases.append(f"{dist} (pip install {dist})")
    switched_off = [d for d in providers if d in installed and d not in loaded and d not in broken]
    why = f"; {_SWITCHES} switched {'it' if len(switched_off) == 1 else 'them'} off" if switched_off else ""
    return ": it is provided by " + " or ".join(phrases) + why


# --------------------------------------------------------------------- registrations
@dataclass
class Registration:
    """One thing a plugin registered: a detector, store backend, monitor or stream endpoint."""

    kind: str
    plugin: str
    name: str
    factory: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    #: What is derived from the registration once and reused (its parameters' pydantic model:
    #: building one with ``create_model`` costs about a millisecond, as much as a small refit).
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def summary(self) -> str:
        return str(self.metadata.get("summary") or "")

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("needs") or ())

    def missing_needs(self) -> list[str]:
        """The declared ``needs`` that cannot be imported here (found without importing them)."""
        return [n for n in self.needs if not _importable(n)]

    def _install_hint(self) -> str:
        install = self.metadata.get("install")
        return f" (or: pip install '{install}')" if install else ""

    def load(self) -> Callable[..., Any]:
        """The factory, importing it now if it was registered lazily.

        A missing optional dependency becomes a ``MissingDependencyError`` naming the
        package to install rather than a bare ``ModuleNotFoundError``. Declared ``needs``
        are checked first: a library may fail on a missing package with a plain
        ``ImportError``, or only later, in ``fit``.
        """
        loaded = self.derived.get("factory")
        if loaded is not None:  # a stream loads it at every refit: the import and checks once
            return loaded
        missing = self.missing_needs()
        if missing:
            raise MissingDependencyError(
                f"{self.qualified_name} needs {', '.join(missing)}, not installed: "
                f"pip install {' '.join(missing)}{self._install_hint()}"
            )
        if not isinstance(self.factory, str):
            return self.factory
        try:
            loaded = self.derived["factory"] = resolve_reference(self.factory)
            return loaded
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            needs = [n for n in self.needs if n.split("[")[0].replace("-", "_") == missing] or [missing]
            raise MissingDependencyError(
                f"{self.qualified_name} needs the package {needs[0]!r}, which is not installed: "
                f"pip install {needs[0]}{self._install_hint()}"
            ) from exc


@dataclass
class PluginInfo:
    """What ``adcore plugins`` reports for one plugin."""

    name: str
    version: str | None
    module: str
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    distribution: str | None = None
    #: port kind -> the names this plugin registered there (filled by ``PluginHost.plugins``)
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: what could not be checked, and why (not errors: the plugin may well be fine)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        """port kind -> how many registrations, for the ports this plugin registered in."""
        return {kind: len(names) for kind, names in self.registered.items() if names}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "distribution": self.distribution,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
            "registers": self.counts(),
            "registrations": {kind: list(names) for kind, names in self.registered.items() if names},
            "ok": self.ok,
            "errors": list(self.errors),
            "notes": list(self.notes),
        }


class PluginHost:
    """Loads plugins once and answers "what is registered, and by whom?".

    Registries are collected lazily per port, so ``adcore algos`` never calls a storage
    hook and listing never builds a detector.
    """

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        only: list[str] | None = None,
        disabled: list[str] | None = None,
        strict: bool | None = None,
        prefer: list[str] | None = None,
        builtins: bool = True,
    ) -> None:
        self.autoload = (not _env_flag("ADCORE_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload
        self.only = _env_list("ADCORE_PLUGINS") if only is None else only
        self.disabled = set((_env_list("ADCORE_DISABLE_PLUGINS") or []) if disabled is None else disabled)
        self.strict = _env_flag("ADCORE_PLUGINS_STRICT") if strict is None else strict
        self.prefer = (_env_list("ADCORE_PREFER") or []) if prefer is None else prefer
        self.builtins = builtins
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, dict[str, Registration]] = {}
        self._hook_errors: dict[str, list[tuple[str, str]]] = {}
        self._called: set[str] = set()
        self._loaded = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ loading
    def load(self) -> PluginHost:
        """Import entry-point plugins, then the built-ins. Idempotent."""
        with self._lock:
            if self._loaded:
                return self
            self._loaded = True
            if self.autoload:
                self._load_entry_points()
            if self.builtins:
                from adcore.builtin import plugin as builtin_plugin

                self.add_plugin(builtin_plugin, CORE_PLUGIN, builtin=True)
            return self

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        seen: dict[str, str] = {}
        for ep in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            if self.only is not None and ep.name not in self.only:
                continue
            if ep.name in self.disabled:
                continue
            if ep.name in seen:
                if seen[ep.name] == ep.value:
                    continue  # the same distribution found twice on sys.path
                self._report(
                    PluginInfo(ep.name, version, ep.value, distribution=dist_name),
                    f"plugin name {ep.name!r} is already used by {seen[ep.name]!r}; rename one entry point",
                )
                continue
            seen[ep.name] = ep.value
            if ep.name == CORE_PLUGIN:
                self._report(
                    PluginInfo(ep.name, version, ep.value, distribution=dist_name),
                    "the plugin name 'core' is reserved for adcore's built-ins",
                )
                continue
            try:
                module = ep.load()
            except Exception as exc:  # any import-time failure is the plugin's, not ours
                self._report(
                    PluginInfo(ep.name, version, ep.value, distribution=dist_name),
                    f"failed to import {ep.value}: {type(exc).__name__}: {exc}",
                )
                continue
            self.add_plugin(module, ep.name, version=version, distribution=dist_name)

    def add_plugin(
        self,
        plugin: Any,
        name: str,
        *,
        version: str | None = None,
        builtin: bool = False,
        distribution: str | None = None,
    ) -> PluginInfo:
        """Register a plugin object (module or instance) under ``name``.

        Public so tests and notebooks can add a plugin without packaging it.
        """
        with self._lock:
            module_name = getattr(plugin, "__name__", type(plugin).__name__)
            info = PluginInfo(name, version, module_name, builtin=builtin, distribution=distribution)
            unknown = self._unknown_hooks(plugin)
            if unknown:
                return self._report(info, unknown)
            try:
                self.pm.register(plugin, name=name)
            except Exception as exc:  # PluginValidationError: bad signature, duplicate name
                return self._report(info, f"invalid plugin: {exc}")
            info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(plugin) or [])
            self._infos[name] = info
            self._registries.clear()  # collected again on next use
            return info

    def _unknown_hooks(self, plugin: Any) -> str | None:
        """Catch a misspelled hook name (pluggy's check_pending, per plugin)."""
        known = [n for n in dir(hookspecs) if n.startswith("register_")]
        for attr in dir(plugin):
            if self.pm.parse_hookimpl_opts(plugin, attr) is None:
                continue
            if attr not in known:
                close = _did_you_mean(attr, known)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return f"unknown hook {attr!r}{hint}; known hooks: {', '.join(known)}"
        return None

    def _report(self, info: PluginInfo, error: str) -> PluginInfo:
        """Record ``error`` against ``info`` once (or raise it in strict mode).

        A plugin that never got registered (import failure, name clash) is kept under a
        key of its own, so it can't hide, or be hidden by, a working plugin of that name.
        """
        if self.strict:
            raise PluginError(f"plugin {info.name!r}: {error}")
        key = info.name
        existing = self._infos.get(key)
        clashes = existing is not None and existing is not info and existing.module != info.module
        if clashes or (info.name == CORE_PLUGIN and not info.builtin):
            key = f"{info.name} ({info.module})"
        target = self._infos.setdefault(key, info)
        if error not in target.errors:  # registries are collected again after add_plugin
            target.errors.append(error)
        return target

    def _report_hook(self, plugin: str, hook_name: str, error: str) -> None:
        """Record an error that one plugin's hook (or one of its registrations) caused."""
        self._hook_errors.setdefault(hook_name, []).append((plugin, error))
        info = self._infos.get(plugin) or PluginInfo(plugin, None, plugin)
        self._report(info, error)

    # ------------------------------------------------------------ calling hooks
    def call_hook(
        self,
        hook_name: str,
        arguments: Callable[[str], Mapping[str, Any]],
        *,
        then: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> list[str]:
        """Call ``hook_name`` of each plugin alone; return the plugins whose call succeeded.

        ``arguments(plugin)`` gives that plugin's keyword arguments (a register callback or
        router of its own); ``then(plugin, arguments)`` runs after its hook returned, inside
        the same guard (e.g. mounting its router). Whatever either raises is reported against
        the plugin, which then contributes nothing; only strict mode makes it fatal. This is
        the one place plugin hooks are called: pluggy's ``hook(...)`` would stop at the first
        plugin that raises.
        """
        self.load()
        self._called.add(hook_name)
        self._hook_errors[hook_name] = []
        succeeded = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            args = arguments(plugin)
            try:
                impl.function(*[args[name] for name in impl.argnames])
                if then is not None:
                    then(plugin, args)
            except Exception as exc:
                if self.strict and isinstance(exc, PluginError):
                    raise  # a refused registration, already worded
                self._report_hook(plugin, hook_name, f"{hook_name} raised {type(exc).__name__}: {exc}")
                continue
            succeeded.append(plugin)
        return succeeded

    def hook_errors(self, hook_name: str) -> list[tuple[str, str]]:
        """``(plugin, error)`` for each failure of the last call of ``hook_name``, refusals included."""
        return list(self._hook_errors.get(hook_name, ()))

    def registration_errors(self, kind: str) -> list[tuple[str, str]]:
        """``(plugin, error)`` for each hook of port ``kind`` that raised and each registration refused."""
        self.registry(kind)
        return self.hook_errors(hookspecs.port(kind).hook)

    def add_commands(self, cli: Any) -> None:
        """Let plugins add CLI commands; a failing plugin is reported, not fatal."""
        self.call_hook("register_commands", lambda plugin: {"cli": cli})

    def add_routes(self, make_router: Callable[[], Any], include: Callable[[Any], None]) -> None:
        """Let plugins add HTTP routes; a failing plugin is reported, not fatal.

        Each plugin fills a router of its own from ``make_router()``, which is handed to
        ``include`` only when the hook returns: one that raises half-way adds no route.
        """
        self.call_hook(
            "register_routes", lambda plugin: {"app": make_router()}, then=lambda plugin, a: include(a["app"])
        )

    # ------------------------------------------------------------- registries
    def registry(self, kind: str) -> dict[str, Registration]:
        """All registrations of one port, keyed by qualified name (``plugin:name``)."""
        self.load()
        with self._lock:
            if kind not in self._registries:
                self._registries[kind] = self._collect(hookspecs.port(kind))
            return self._registries[kind]

    def _collect(self, port: Port) -> dict[str, Registration]:
        found: dict[str, Registration] = {}
        staged: dict[str, dict[str, Registration]] = {}

        def arguments(plugin: str) -> dict[str, Any]:
            staged[plugin] = {}
            return {"register": self._stager(plugin, port, staged[plugin])}

        # a hook that fails half-way contributes nothing: its staged entries are dropped
        self.call_hook(port.hook, arguments, then=lambda plugin, _: found.update(staged[plugin]))
        return found

    def _stager(self, plugin: str, port: Port, staged: dict[str, Registration]) -> Callable[..., None]:
        """The ``register`` callback handed to one plugin's hook: validates, then stages.

        A registration that fails validation is refused alone and reported against the
        plugin; the plugin's other registrations stand.
        """

        def register(name: Any, factory: Any = None, /, **metadata: Any) -> None:
            try:
                entry = self._validate_entry(plugin, port, name, factory, metadata, staged)
            except ValueError as exc:
                self._report_hook(plugin, port.hook, f"{port.hook}: {exc}")
                return
            staged[entry.qualified_name] = entry

        return register

    def _validate_entry(
        self,
        plugin: str,
        port: Port,
        name: Any,
        factory: Any,
        metadata: dict[str, Any],
        staged: dict[str, Registration],
    ) -> Registration:
        kind = port.kind
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ValueError(f"malformed {kind} name {name!r}: use letters, digits, '_', '-', '.'")
        if isinstance(factory, str):
            if ":" not in factory:
                raise ValueError(
                    f"{kind} {name!r}: a lazy factory must look like 'module:attr', got {factory!r}"
                )
        elif not callable(factory):
            raise ValueError(f"{kind} {name!r}: factory must be callable or 'module:attr', got {factory!r}")
        try:
            checked = check_keywords(port, metadata)
        except ValueError as exc:
            raise ValueError(f"{kind} {name!r} refused: {exc}") from None
        entry = Registration(kind, plugin, name, factory, checked)
        if entry.qualified_name in staged:
            raise ValueError(f"{kind} {name!r} registered twice")
        return entry

    # ---------------------------------------------------------------- queries
    def info(self, name: str) -> PluginInfo | None:
        """One plugin's report, without collecting anything (cheap: the detect service uses it)."""
        self.load()
        return self._infos.get(name)

    def plugins(self, *, check_hooks: bool = False) -> list[PluginInfo]:
        """Every plugin found, the broken ones included; built-ins last.

        Every port is collected, since a hook that raises is only known once it has been
        called. With ``check_hooks`` (``adcore plugins``), ``register_commands`` and
        ``register_routes`` are also called, on a throwaway app and router, unless this
        process already called them for real.
        """
        self.load()
        registries = {port.kind: self.registry(port.kind) for port in PORTS}
        if check_hooks:
            self._check_commands_and_routes()
        for key, info in self._infos.items():  # a clashing plugin, kept under "name (module)", has none
            info.registered = {
                kind: sorted(r.name for r in registry.values() if r.plugin == key)
                for kind, registry in registries.items()
            }
        return sorted(self._infos.values(), key=lambda i: (i.builtin, i.name))

    def _implementers(self, hook_name: str) -> list[str]:
        return [impl.plugin_name for impl in getattr(self.pm.hook, hook_name).get_hookimpls()]

    def _check_commands_and_routes(self) -> None:
        """Call the hooks outside the ports on stand-ins, so a broken one shows in ``adcore plugins``.

        Only when some plugin implements them, so listing stays cheap; routes only when
        FastAPI is installed (importing it otherwise would fail for the wrong reason).
        """
        if "register_commands" not in self._called and self._implementers("register_commands"):
            import typer

            self.call_hook("register_commands", lambda plugin: {"cli": typer.Typer()})
        routes = self._implementers("register_routes")
        if "register_routes" in self._called or not routes:
            return
        if _importable("fastapi"):
            from fastapi import APIRouter

            self.call_hook("register_routes", lambda plugin: {"app": APIRouter()})
            return
        note = "register_routes not checked: FastAPI is not installed (pip install 'adcore[server]')"
        for plugin in routes:
            info = self._infos.get(plugin)
            if info is not None and note not in info.notes:
                info.notes.append(note)

    # ------------------------------------------------------- name resolution
    def plugin_order(self, kind: str = "detector") -> list[str]:
        """Which plugin wins a bare name: core, then ADCORE_PREFER, then alphabetical."""
        names = sorted({r.plugin for r in self.registry(kind).values()})
        head = [CORE_PLUGIN] + [p for p in self.prefer if p != CORE_PLUGIN]
        return [p for p in head if p in names] + [p for p in names if p not in head]

    def _preferred(self, kind: str, matches: list[Registration]) -> Registration:
        order = {p: i for i, p in enumerate(self.plugin_order(kind))}
        return min(matches, key=lambda r: order[r.plugin])

    def bare_name_owners(self) -> dict[str, str]:
        """Map each bare detector name to the qualified name it resolves to."""
        order = {p: i for i, p in enumerate(self.plugin_order())}
        owners: dict[str, str] = {}
        for reg in sorted(self.registry("detector").values(), key=lambda r: order[r.plugin]):
            owners.setdefault(reg.name, reg.qualified_name)
        return owners

    def resolve(self, kind: str, name: str) -> Registration:
        """Find a registration by ``plugin:name`` or by bare ``name`` (``UnknownAlgorithmError`` if none)."""
        registry = self.registry(kind)
        if name in registry:
            return registry[name]
        if ":" not in name:
            matches = [r for r in registry.values() if r.name == name]
            if matches:
                return self._preferred(kind, matches)
        port = hookspecs.port(kind)
        # suggest in the form typed: "hbso" -> hbos, "core:hbso" -> core:hbos
        candidates = set(registry) if ":" in name else {r.name for r in registry.values()}
        raise UnknownAlgorithmError(
            self._unknown(port, name, f"unknown {port.label} {name!r}", candidates, n_close=3)
        )

    def resolve_scheme(
        self, kind: str, url: str, *, scheme: str | None = None, error: type[AdcoreError] = ParameterError
    ) -> Registration:
        """The registration of port ``kind`` serving ``url``'s scheme (``file`` for a plain path).

        ``scheme`` overrides the parsing (messaging reads ``-`` as ``stdio``). Several plugins
        serving one scheme resolve like a bare detector name: core, ADCORE_PREFER, alphabetical.
        An unknown scheme raises ``error`` with the installed schemes, a close match, or the
        distribution that provides it.
        """
        scheme = (scheme or url_scheme(url)).lower()
        registry = self.registry(kind)
        matches = [r for r in registry.values() if r.name == scheme]
        if matches:
            return self._preferred(kind, matches)
        port = hookspecs.port(kind)
        what = f"no {port.label} for {scheme!r} URLs ({_redact(url)})"
        raise error(self._unknown(port, scheme, what, {r.name for r in registry.values()}))

    def _unknown(self, port: Port, name: str, what: str, candidates: set[str], n_close: int = 1) -> str:
        """One line: what was not found, then the distribution that provides it or the close
        matches, then what is installed (or, for detectors, where to see it)."""
        hint = provider_hint(known_providers(port.kind, name), *self._provider_states())
        if not hint:
            close = _did_you_mean(name, candidates, n=n_close)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
        if port.kind == "detector":
            return f"{what}{hint}" if hint else f"{what}; run 'adcore algos' to list them"
        installed = ", ".join(sorted({c.rpartition(":")[2] for c in candidates})) or "none"
        return f"{what}{hint}; installed {'schemes' if port.schemes else port.label + 's'}: {installed}"

    def _provider_states(self) -> tuple[set[str], set[str], set[str]]:
        """(installed, loaded, broken) plugin distributions; installed is read from entry points."""
        from importlib.metadata import entry_points

        installed = set()
        for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            if dist is not None:
                installed.add(_normalise_dist(dist.metadata["Name"]))
        infos = [i for i in self._infos.values() if i.distribution]
        loaded = {_normalise_dist(str(i.distribution)) for i in infos if not i.errors}
        broken = {_normalise_dist(str(i.distribution)) for i in infos if i.errors}
        return installed, loaded, broken


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use (never at import)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost().load()
        return _host


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests, embedding applications)."""
    global _host
    with _host_lock:
        _host = host
