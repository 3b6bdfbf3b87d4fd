"""Health probes: liveness (the process answers; always open) and readiness (can it serve?).

Readiness fails with 503 when no detector is registered, the model store cannot be opened
and queried within a few seconds, the job queue (``--queue redis://...``) does not answer,
or a circuit breaker on one of those services is open (:mod:`adcore.services.resilience`),
so a load balancer stops sending traffic to a replica whose database went away instead of
letting every request fail. The 503 carries ``Retry-After`` (the soonest breaker trial);
readiness answers 200 again once the services answer, without restarting anything.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from adcore.server import services
from adcore.server.errors import NotReady
from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.routes.common import error_responses, get_state
from adcore.server.schemas import Liveness, Readiness
from adcore.server.state import ServerState

STORE_TIMEOUT_S = 5.0


def build_liveness_router() -> APIRouter:
    router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

    @router.get("/health/liveness", response_model=Liveness)
    async def liveness() -> Any:
        """Always 200 while the process runs; needs no API key."""
        return {"status": "ok"}

    return router


async def _abandonable(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a thread that a timeout may walk away from (a hung store must not hang the probe)."""
    import inspect

    import anyio

    params = inspect.signature(anyio.to_thread.run_sync).parameters
    flag = "abandon_on_cancel" if "abandon_on_cancel" in params else "cancellable"  # anyio < 4.1
    return await anyio.to_thread.run_sync(lambda: fn(*args), **{flag: True})


async def _check(fn: Any) -> str:
    """``ok`` or ``failed: why`` for one service check, bounded by :data:`STORE_TIMEOUT_S`."""
    import anyio

    try:
        with anyio.fail_after(STORE_TIMEOUT_S):
            await _abandonable(fn)
        return "ok"
    except TimeoutError:
        return f"failed: no answer within {STORE_TIMEOUT_S:g} s"
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"


def _breaker_checks(checks: dict[str, str]) -> int:
    """Add one ``breaker <service>`` check per breaker that is not closed; the soonest retry, in s."""
    import math

    from adcore.services import resilience

    waits = []
    for dependency in resilience.dependencies():
        if not dependency.critical:
            continue
        state = dependency.state
        if state == resilience.OPEN:
            wait = dependency.retry_after()
            waits.append(wait)
            checks[f"breaker {dependency.name}"] = (
                f"failed: open after repeated failures ({dependency.last_error}); "
                f"trial call in {math.ceil(wait)} s"
            )
        elif state == resilience.HALF_OPEN:
            checks[f"breaker {dependency.name}"] = "ok: half-open, the next call is a trial"
    return max(1, math.ceil(min(waits))) if waits else 0


def build_readiness_router() -> APIRouter:
    router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

    @router.get(
        "/health/readiness",
        response_model=Readiness,
        responses=error_responses(503),
    )
    async def readiness(state: ServerState = Depends(get_state)) -> Any:
        """200 when plugins are loaded and the model store answers; 503 otherwise."""
        import anyio

        from adcore.plugins import get_host

        checks: dict[str, str] = {}
        host = state.host or get_host()
        detectors = await anyio.to_thread.run_sync(lambda: host.registry("detector"))
        checks["plugins"] = (
            f"ok: {len(detectors)} detectors" if detectors else "failed: no detector registered"
        )
        try:
            with anyio.fail_after(STORE_TIMEOUT_S):
                await _abandonable(services.check_store, state.settings.store)
            checks["store"] = "ok"
        except TimeoutError:
            checks["store"] = f"failed: no answer within {STORE_TIMEOUT_S:g} s"
        except Exception as exc:
            checks["store"] = f"failed: {type(exc).__name__}: {exc}"
        if state.jobs is not None and hasattr(state.jobs, "ping"):
            checks["queue"] = await _check(state.jobs.ping)
        retry_after = _breaker_checks(checks)
        failed = [name for name, value in checks.items() if not value.startswith("ok")]
        if failed:
            headers = {"Retry-After": str(retry_after or int(STORE_TIMEOUT_S))}
            message = f"not ready: {'; '.join(f'{n} {checks[n]}' for n in failed)}"
            raise NotReady(message, checks=checks, headers=headers)
        return {"status": "ready", "checks": checks}

    return router
