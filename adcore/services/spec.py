"""One detector spec and one builder: how every entry point turns options into a detector.

``adcore run``/``fit``/``explain``/``stream``/``bench``, ``POST /v1/detect`` and
``/v1/models``, ``adcore.detect``/``adcore.fit`` and ``adcore.create_detector`` all call
:func:`detector_spec` and :meth:`DetectorSpec.build`, so the same inputs give the same
detector, hence the same scores and labels, wherever they come from. The rules that used
to live in one entry point live here:

- ``"a,b,c"`` names an ensemble (``core:ensemble``) of those members;
- parameters arrive typed (a mapping, from Python and JSON) or as ``KEY=VALUE`` text
  (the CLI's ``--param``), read against the detector's own schema;
- ``MEMBER.KEY`` routes a parameter to one ensemble member (``iforest.n_estimators=50``);
- ``contamination``, ``threshold`` and ``random_state`` given as detector parameters are the
  wrapper's own settings (PyOD lists ``contamination`` among its parameters), so they are
  lifted out rather than passed twice; given both ways with different values is an error;
- ``combine``/``normalize``/``jobs`` apply to ensembles only;
- a ``vote`` ensemble labels by majority: its threshold defaults to ``fixed:0.5``;
- entry points ask for a seed to be drawn when none is given (``draw_seed=True``), and
  record it, so any run can be repeated with ``--seed``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from adcore.errors import ParameterError

DEFAULT_CONTAMINATION = 0.1
DEFAULT_THRESHOLD = "contamination"
#: A vote ensemble's score is its share of member votes (plus a tie-break below one vote):
#: scores above one half are a majority.
MAJORITY_THRESHOLD = "fixed:0.5"
ENSEMBLE_ALGORITHM = "core:ensemble"
ENSEMBLE_OPTIONS = ("combine", "normalize", "jobs")
#: Wrapper settings that a detector's parameter list may also name, and the spec field each is.
_WRAPPER_PARAMS = {"contamination": "contamination", "threshold": "threshold", "random_state": "seed"}
_SEED_LIMIT = 2**31  # every library we wrap takes a seed below 2**32; below 2**31 reads shorter


@dataclass(frozen=True)
class DetectorSpec:
    """Everything that defines a detector before it sees data (see the module docstring).

    ``params`` are the detector's own parameters, or for an ensemble its ensemble-level
    ones (``combine``, ``weights``...); ``member_params`` hold each member's, keyed by the
    member name as written in ``members``.
    """

    algorithm: str | Callable[..., Any]
    params: dict[str, Any] = field(default_factory=dict)
    members: tuple[str, ...] | None = None
    member_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    contamination: float = DEFAULT_CONTAMINATION
    threshold: str = DEFAULT_THRESHOLD
    seed: int | None = None

    @property
    def is_ensemble(self) -> bool:
        return self.members is not None

    @property
    def name(self) -> str:
        """How a user wrote the detector: ``pyod:iforest``, ``iforest,ecod``, or a class's name."""
        if callable(self.algorithm):
            return str(getattr(self.algorithm, "__qualname__", repr(self.algorithm)))
        return self.algorithm

    def with_seed(self, seed: int | None) -> DetectorSpec:
        return replace(self, seed=seed)

    def build(self) -> Any:
        """A validated, unfitted :class:`adcore.domain.detector.Detector` (parameter errors raise now)."""
        from adcore.domain.detector import Detector

        own = {"contamination": self.contamination, "threshold": self.threshold, "random_state": self.seed}
        if self.members is None:
            detector = Detector(self.algorithm, **own, **self.params)
        else:
            extra: dict[str, Any] = {"members": list(self.members), **self.params}
            if self.member_params:
                extra["member_params"] = {k: dict(v) for k, v in self.member_params.items()}
            detector = Detector(ENSEMBLE_ALGORITHM, **own, **extra)
        detector.validated_params()
        return detector

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe record of the spec (summaries and stored models carry it)."""
        from adcore.io.jsonio import jsonable

        out: dict[str, Any] = {"algorithm": self.name, "params": jsonable(self.params)}
        if self.members is not None:
            out["members"] = list(self.members)
            out["member_params"] = jsonable(self.member_params)
        out.update(contamination=self.contamination, threshold=self.threshold, seed=self.seed)
        return out


def detector_spec(
    algorithm: str | Callable[..., Any],
    params: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    contamination: float | None = None,
    threshold: str | None = None,
    seed: int | None = None,
    combine: str | None = None,
    normalize: str | None = None,
    jobs: int | None = None,
    draw_seed: bool = False,
) -> DetectorSpec:
    """Read user options into a :class:`DetectorSpec`; every option error is a ``ParameterError``.

    ``params`` is a mapping of typed values, or ``KEY=VALUE`` strings (read as JSON unless
    the parameter is a string in the detector's schema). ``None`` for ``contamination``,
    ``threshold`` and ``seed`` means "not given": the defaults and rules above apply.
    """
    if isinstance(algorithm, str):
        algorithm = algorithm.strip()
        if not algorithm:
            raise ParameterError("no detector named: give an algorithm such as core:hbos (adcore algos)")
    members = parse_members(algorithm) if isinstance(algorithm, str) else None
    options = {"combine": combine, "normalize": normalize, "jobs": jobs}
    given_options = {k: v for k, v in options.items() if v is not None}
    if members is None:
        if given_options:
            names = ", ".join(f"--{k}" for k in given_options)
            verb = "applies" if len(given_options) == 1 else "apply"
            raise ParameterError(
                f"{names} {verb} to ensembles only: name several detectors, e.g. iforest,ecod"
            )
        values = _single_params(algorithm, params)
        member_values: dict[str, dict[str, Any]] = {}
    else:
        values, member_values = _ensemble_params(members, params)
        for key, value in given_options.items():
            _merge(values, key, value, f"--{key}")
    for where in (values, *member_values.values()):
        if "algorithm" in where:
            raise ParameterError(
                "'algorithm' names the detector and cannot be passed as one of its parameters "
                "(the library's default for it applies)"
            )
    wrapper = {"contamination": contamination, "threshold": threshold, "seed": seed}
    for key, target in _WRAPPER_PARAMS.items():
        if key in values:
            lifted = values.pop(key)
            if wrapper[target] is not None and wrapper[target] != lifted:
                raise ParameterError(
                    f"{key} is given twice, as {wrapper[target]!r} and as the parameter {key}={lifted!r}: "
                    "give it once"
                )
            wrapper[target] = lifted
    if wrapper["threshold"] is None:
        voting = members is not None and values.get("combine") == "vote"
        wrapper["threshold"] = MAJORITY_THRESHOLD if voting else DEFAULT_THRESHOLD
    if wrapper["contamination"] is None:
        wrapper["contamination"] = DEFAULT_CONTAMINATION
    if wrapper["seed"] is None and draw_seed:
        wrapper["seed"] = secrets.randbelow(_SEED_LIMIT)
    _check_seed(wrapper["seed"])
    return DetectorSpec(
        algorithm if members is None else ",".join(members),
        values,
        tuple(members) if members is not None else None,
        member_values,
        contamination=wrapper["contamination"],
        threshold=str(wrapper["threshold"]),
        seed=wrapper["seed"],
    )


def build_detector(
    algorithm: str | Callable[..., Any],
    params: Mapping[str, Any] | Sequence[str] | None = None,
    **options: Any,
) -> Any:
    """``detector_spec(...).build()``: the one road from options to a validated detector."""
    return detector_spec(algorithm, params, **options).build()


# ----------------------------------------------------------------------------- parameters
def _single_params(
    algorithm: str | Callable[..., Any], params: Mapping[str, Any] | Sequence[str] | None
) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    return _parse_pairs(algorithm, list(params))


def _ensemble_params(
    members: list[str], params: Mapping[str, Any] | Sequence[str] | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split ensemble-level parameters from ``MEMBER.KEY`` ones (routed to that member)."""
    aliases = _member_aliases(members)
    values: dict[str, Any] = {}
    member_values: dict[str, dict[str, Any]] = {}
    if params is None:
        items: list[tuple[str, Any, bool]] = []
    elif isinstance(params, Mapping):
        items = [(str(k), v, False) for k, v in params.items()]
    else:
        items = []
        for pair in params:
            key, sep, raw = str(pair).partition("=")
            if not sep or not key.strip():
                raise ParameterError(f"--param expects KEY=VALUE, got {pair!r}")
            items.append((key.strip(), raw, True))
    for key, value, is_text in items:
        prefix, dot, member_key = key.rpartition(".")
        if dot and prefix in aliases:
            member = aliases[prefix]
            if is_text:
                value = _parse_pairs(member, [f"{member_key}={value}"])[member_key]
            _merge(member_values.setdefault(member, {}), member_key, value, key)
            continue
        if key == "member_params" and isinstance(value, Mapping):
            unknown = sorted(str(name) for name in value if str(name) not in aliases)
            if unknown:
                raise ParameterError(
                    f"member_params names {', '.join(unknown)}, which are not members ({', '.join(members)})"
                )
            for name, extra in value.items():
                member = aliases[str(name)]
                member_values.setdefault(member, {})
                for k, v in dict(extra).items():
                    _merge(member_values.setdefault(member, {}), str(k), v, f"{name}.{k}")
            continue
        if is_text:
            value = _parse_pairs(ENSEMBLE_ALGORITHM, [f"{key}={value}"])[key]
        _merge(values, key, value, key)
    return values, member_values


def _member_aliases(members: list[str]) -> dict[str, str]:
    """A member may be addressed as written, qualified or bare: ``core:hbos.n_bins``, ``hbos.n_bins``."""
    from adcore.plugins import get_host

    aliases = {name: name for name in members}
    registrations = {name: get_host().resolve("detector", name) for name in members}
    for name, reg in registrations.items():
        aliases.setdefault(reg.qualified_name, name)
    bare = [reg.name for reg in registrations.values()]
    for name, reg in registrations.items():
        if bare.count(reg.name) == 1:  # pyod:knn and sklearn:knn in one ensemble: qualify them
            aliases.setdefault(reg.name, name)
    return aliases


def _parse_pairs(algorithm: str | Callable[..., Any], pairs: list[str]) -> dict[str, Any]:
    from adcore.domain.detector import Detector
    from adcore.domain.params import parse_key_values

    return parse_key_values(pairs, Detector(algorithm).params_model())


def _merge(target: dict[str, Any], key: str, value: Any, label: str) -> None:
    if key in target and target[key] != value:
        raise ParameterError(f"{label} is given twice ({target[key]!r} and {value!r}): give it once")
    target[key] = value


def _check_seed(seed: Any) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ParameterError(f"seed must be an integer in [0, 2**32), got {seed!r}")


def create_detector(algorithm: str | Callable[..., Any], /, **params: Any) -> Any:
    """Build an :class:`adcore.Detector` and validate its parameters now (errors before any data).

    ``"a,b,c"`` is shorthand for the ``core:ensemble`` detector with those members;
    ``MEMBER.KEY`` parameters go to one member. ``contamination``, ``threshold`` and
    ``random_state`` are the wrapper's settings (see :mod:`adcore.services.spec`, the one
    builder every entry point shares). ``algorithm`` is positional-only so that a detector
    parameter of that name (PyOD's KNN has one) is refused with a ParameterError rather
    than a TypeError.
    """
    return build_detector(algorithm, params)


def parse_members(algo: str) -> list[str] | None:
    """``"iforest,ecod"`` -> ``["iforest", "ecod"]``; a single name -> None.

    Lives here rather than in :mod:`adcore.builtin.ensemble` so that naming one detector never
    imports the ensemble machinery (a start-up cost on every CLI command).
    """
    if "," not in algo:
        return None
    names = [n.strip() for n in algo.split(",")]
    if not all(names):  # "a,,b", "a," or ",": a missing name is a typo, never silently skipped
        raise ParameterError(
            f"empty detector name in {algo!r}: separate the names with single commas, e.g. iforest,ecod"
        )
    return names
