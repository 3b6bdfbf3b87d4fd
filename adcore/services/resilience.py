"""Retries with jittered backoff and circuit breakers around the services adcore calls.

PostgreSQL, S3, Redis, MLflow and alert receivers go away: a restart, a failover, a
network blip. Without help every call made meanwhile fails at once, and a request that
needed one answers 500. Each such service is a :class:`Dependency` here, one per kind and
target (``postgres 10.0.0.5:5432``), shared by every thread of the process:

- a call that fails with a *transient* error (refused connection, timeout, a dropped
  session, a 5xx) is retried by `tenacity <https://tenacity.readthedocs.io>`_ with
  exponential, jittered backoff, within an attempt count and a time budget, so a blip costs
  latency and not an error. (tenacity rather than stamina, its friendlier wrapper: stamina
  logs a WARNING line per retry and counts into the global Prometheus registry by default,
  which would print into the CLI's one-line errors and leak into a host application's
  metrics; tenacity does what it is told, and retries are logged here at INFO level on the
  ``adcore.resilience`` logger and counted in :class:`DependencyStats`);
- every failed attempt counts towards a `pybreaker <https://github.com/danielfm/pybreaker>`_
  circuit breaker; after ``failures`` in a row it opens and calls fail at once, without
  touching the service, for ``reset_s`` seconds. The first call after that is a trial: it
  closes the breaker on success, reopens it on failure. A replica with an open breaker is
  not ready (``/health/readiness`` answers 503) and its requests answer 503 with
  ``Retry-After``, so load balancers and clients back off instead of hammering;
- when the retries run out or the breaker is open, the caller gets a
  :class:`~adcore.errors.ServiceUnavailableError` (or the subclass it asks for, such as
  :class:`~adcore.errors.StoreUnavailableError`) naming the service, the cause and when to
  try again. Errors that are not transient (not found, access denied, a bad request) pass
  through untouched and never trip a breaker: they are the caller's to report.

Settings, from the environment (read when a dependency is first used):
``ADCORE_RETRY_ATTEMPTS`` (3), ``ADCORE_RETRY_TIMEOUT_S`` (10: the whole budget of one
call, waits included), ``ADCORE_BREAKER_FAILURES`` (5) and ``ADCORE_BREAKER_RESET_S`` (30).
``ADCORE_RETRY_ATTEMPTS=1`` turns retries off; breakers always run.

pybreaker's own ``call`` holds one lock for the whole call, which would serialise every
thread's database reads behind a single slow one; :class:`_Breaker` keeps pybreaker's
state machine (its state changes are locked) without that lock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from adcore.errors import ParameterError, ServiceUnavailableError

T = TypeVar("T")
log = logging.getLogger("adcore.resilience")
Transient = Callable[[BaseException], bool]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_STATE_NAMES = {"closed": CLOSED, "open": OPEN, "half-open": HALF_OPEN, "half_open": HALF_OPEN}


def _env_number(name: str, default: float, *, integer: bool = False, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ParameterError(f"{name}={raw!r} is not {kind}") from None
    if not math.isfinite(value) or value < minimum:
        raise ParameterError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class Policy:
    """How hard to try one call, and when to stop trying for a while."""

    attempts: int = 3
    timeout_s: float = 10.0
    wait_initial_s: float = 0.1
    wait_max_s: float = 2.0
    wait_jitter_s: float = 0.5
    failures: int = 5
    reset_s: float = 30.0

    @classmethod
    def from_env(cls) -> Policy:
        return cls(
            attempts=int(_env_number("ADCORE_RETRY_ATTEMPTS", cls.attempts, integer=True, minimum=1)),
            timeout_s=_env_number("ADCORE_RETRY_TIMEOUT_S", cls.timeout_s, minimum=0.001),
            failures=int(_env_number("ADCORE_BREAKER_FAILURES", cls.failures, integer=True, minimum=1)),
            reset_s=_env_number("ADCORE_BREAKER_RESET_S", cls.reset_s, minimum=0.001),
        )


@dataclass
class DependencyStats:
    """Counts since the process started (exported as ``adcore_dependency_*`` metrics)."""

    calls: int = 0
    retries: int = 0
    failures: int = 0
    rejected: int = 0  # calls refused at once by an open breaker
    opened: int = 0  # times the breaker opened


def _breaker_class() -> type:
    import pybreaker

    class _Breaker(pybreaker.CircuitBreaker):  # type: ignore[misc]
        """pybreaker's breaker without its call-wide lock (see the module's docstring)."""

        def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return self.state.call(func, *args, **kwargs)

    return _Breaker


class Dependency:
    """One remote service (``kind`` at ``target``): its breaker, retry policy and counts."""

    def __init__(
        self,
        kind: str,
        target: str,
        transient: Transient,
        policy: Policy | None = None,
        *,
        critical: bool = True,
    ) -> None:
        import pybreaker

        self.critical = critical  # an open breaker makes the server unready (alert sinks: no)
        self.kind = kind
        self.target = target
        self.transient = transient
        self.policy = policy or Policy.from_env()
        self.stats = DependencyStats()
        self._opened_at: float | None = None
        self._lock = threading.Lock()
        self._last_error = ""
        dependency = self

        class _Listener(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
            def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
                dependency._state_changed(getattr(new_state, "name", str(new_state)))

        self._breaker = _breaker_class()(
            fail_max=self.policy.failures,
            reset_timeout=self.policy.reset_s,
            exclude=[lambda exc: not self.transient(exc)],
            listeners=[_Listener()],
            name=f"{kind} {target}",
            throw_new_error_on_trip=False,
        )

    # ----------------------------------------------------------------- state
    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}"

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (an open breaker past its timeout reads half-open)."""
        state = _STATE_NAMES.get(str(self._breaker.current_state), str(self._breaker.current_state))
        if state == OPEN and self.retry_after() <= 0:
            return HALF_OPEN
        return state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when it would now)."""
        opened = self._opened_at
        if opened is None or str(self._breaker.current_state) != "open":
            return 0.0
        return max(0.0, self.policy.reset_s - (time.monotonic() - opened))

    @property
    def last_error(self) -> str:
        return self._last_error

    def _state_changed(self, new_state: str) -> None:
        with self._lock:
            if _STATE_NAMES.get(new_state) == OPEN:
                self._opened_at = time.monotonic()
                self.stats.opened += 1
            elif _STATE_NAMES.get(new_state) == CLOSED:
                self._opened_at = None

    def reset(self) -> None:
        """Close the breaker and forget failures (tests; an operator's manual override)."""
        self._breaker.close()
        self._opened_at = None

    # ------------------------------------------------------------------ call
    def call(
        self,
        fn: Callable[[], T],
        *,
        action: str,
        error: type[ServiceUnavailableError] = ServiceUnavailableError,
        idempotent: bool = True,
    ) -> T:
        """``fn()``, retried on transient errors while the breaker lets it through.

        ``action`` completes the message (``reading the model index``). A call that is not
        ``idempotent`` gets one attempt: what it did before failing is unknown.
        """
        import pybreaker
        import tenacity

        self.stats.calls += 1
        policy = self.policy

        def retry_on(exc: BaseException) -> bool:
            if not self.transient(exc):
                return False
            self._last_error = _one_line(exc)
            return str(self._breaker.current_state) != "open"  # it just opened: stop knocking

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            log.info(
                "%s: %s at %s failed (%s); retry %d in %.2f s",
                action, self.kind, self.target, self._last_error, state.attempt_number,
                state.upcoming_sleep,
            )  # fmt: skip

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retry_on),
            stop=tenacity.stop_after_attempt(policy.attempts if idempotent else 1)
            | tenacity.stop_after_delay(policy.timeout_s),
            wait=tenacity.wait_exponential(multiplier=policy.wait_initial_s, max=policy.wait_max_s)
            + tenacity.wait_random(0, policy.wait_jitter_s),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._breaker.call, fn)  # type: ignore[no-any-return]
        except pybreaker.CircuitBreakerError:
            self.stats.rejected += 1
            raise self.unavailable(action, error) from None
        except Exception as exc:
            if self.transient(exc):
                self.stats.failures += 1
                self._last_error = _one_line(exc)
                raise self.unavailable(action, error, cause=exc) from exc
            raise

    @contextlib.contextmanager
    def attempt(
        self, action: str, error: type[ServiceUnavailableError] = ServiceUnavailableError
    ) -> Iterator[None]:
        """One attempt of a ``with`` block under the breaker, for clients that retry by themselves
        (MLflow's retries its HTTP calls): refused at once while the breaker is open; a transient
        failure in the block counts towards it and becomes ``error``; success closes it."""
        if self.state == OPEN:
            self.stats.calls += 1
            self.stats.rejected += 1
            raise self.unavailable(action, error)
        failure: BaseException | None = None
        try:
            yield
        except Exception as exc:
            if not self.transient(exc):
                raise
            failure = exc

        def outcome() -> None:
            if failure is not None:
                raise failure

        self.call(outcome, action=action, error=error, idempotent=False)

    def unavailable(
        self,
        action: str,
        error: type[ServiceUnavailableError] = ServiceUnavailableError,
        *,
        cause: BaseException | None = None,
    ) -> ServiceUnavailableError:
        """The error a caller raises: the service, what failed, why, and when to retry."""
        wait = self.retry_after()
        if cause is None and wait > 0:
            why = f"circuit open after repeated failures ({self._last_error or 'no answer'})"
            retry = wait
        else:
            why = _one_line(cause) if cause is not None else self._last_error or "no answer"
            retry = wait if wait > 0 else 1.0
        message = (
            f"{action} failed: {self.kind} at {self.target} is unavailable: {why}; "
            f"retry in {math.ceil(retry)} s"
        )
        return error(message, retry_after=retry, dependency=self.kind)


_registry: dict[tuple[str, str], Dependency] = {}
_registry_lock = threading.Lock()


def dependency(kind: str, target: str, transient: Transient, *, critical: bool = True) -> Dependency:
    """The process-wide :class:`Dependency` for ``kind`` at ``target`` (made on first use).

    ``critical``: whether the server can serve without it (an alert receiver: it can).
    """
    key = (kind, target)
    found = _registry.get(key)
    if found is not None:
        return found
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = Dependency(kind, target, transient, critical=critical)
        return found


def dependencies() -> list[Dependency]:
    """Every dependency this process has called, in first-use order."""
    return list(_registry.values())


def forget_dependencies() -> None:
    """Drop every breaker and count (tests that restart services; settings changed in-process)."""
    with _registry_lock:
        _registry.clear()


def open_breakers() -> list[Dependency]:
    """The dependencies whose breaker is open now (not yet due for a trial call)."""
    return [d for d in dependencies() if d.state == OPEN]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
