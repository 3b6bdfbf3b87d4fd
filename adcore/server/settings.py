"""Server settings: one frozen object built from CLI options or the environment.

``--workers N`` starts N uvicorn processes that each build their own app, so the
settings travel to them through one environment variable (``ADCORE_SERVE_SETTINGS``,
JSON) rather than through Python objects; the API key is never put there, each
worker reads ``ADCORE_API_KEY`` itself.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass, field

from adcore.errors import ParameterError

API_KEY_ENV = "ADCORE_API_KEY"
SETTINGS_ENV = "ADCORE_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServerSettings:
    """Everything the app needs to know; defaults are safe for a laptop.

    Limits are per request (body, rows, features) or per client (rate); ``concurrency``
    bounds how many CPU-heavy calls (fit, score, explain) run at once in worker threads,
    so a burst of big requests queues instead of starving the event loop.
    """

    host: str = "127.0.0.1"
    port: int = 8001
    workers: int = 1
    store: str | None = None
    api_key: str | None = field(default=None, repr=False)
    max_body_mb: float = 10.0
    max_rows: int = 100_000
    max_features: int = 1_000
    max_explain_rows: int = 1_000
    rate_limit: float = 50.0
    rate_burst: int = 100
    concurrency: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    recent: int = 50
    drift_window: int = 200
    drift_alpha: float = 1e-4
    model_cache: int = 16
    monitors: tuple[str, ...] = ()
    #: jobs (``/v1/jobs``): a ``redis://`` URL for RQ workers, or None for the in-process pool
    queue: str | None = field(default=None, repr=False)
    job_workers: int = 2
    max_queued_jobs: int = 1000

    def __post_init__(self) -> None:
        positive = {
            "port": self.port >= 0,
            "workers": self.workers >= 1,
            "max_body_mb": self.max_body_mb > 0,
            "max_rows": self.max_rows >= 1,
            "max_features": self.max_features >= 1,
            "max_explain_rows": self.max_explain_rows >= 1,
            "rate_limit": self.rate_limit >= 0,
            "rate_burst": self.rate_burst >= 1,
            "concurrency": self.concurrency >= 1,
            "recent": self.recent >= 1,
            "drift_window": self.drift_window >= 10,
            "drift_alpha": 0 < self.drift_alpha < 1,
            "model_cache": self.model_cache >= 1,
            "job_workers": self.job_workers >= 1,
            "max_queued_jobs": self.max_queued_jobs >= 1,
        }
        bad = [name for name, ok in positive.items() if not ok]
        if bad:
            shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ParameterError(
                f"invalid server settings: {shown} (see 'adcore serve --help' for the ranges)"
            )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def is_loopback(self) -> bool:
        """Whether :attr:`host` can only be reached from this machine (see :func:`is_loopback_host`)."""
        return is_loopback_host(self.host)

    def replace(self, **changes: object) -> ServerSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_env(self) -> str:
        """JSON for :data:`SETTINGS_ENV`, without the API key."""
        data = dataclasses.asdict(self)
        data.pop("api_key")
        data["monitors"] = list(self.monitors)
        return json.dumps(data)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        """Settings from :data:`SETTINGS_ENV` (if set) plus the API key from ``ADCORE_API_KEY``."""
        env = os.environ if environ is None else environ
        raw = env.get(SETTINGS_ENV)
        data = json.loads(raw) if raw else {}
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "api_key"}
        if "monitors" in values:
            values["monitors"] = tuple(values["monitors"])
        return cls(**values, api_key=env.get(API_KEY_ENV) or None)


def is_loopback_host(host: str) -> bool:
    """``localhost`` or an address that parses as a loopback IP (127.0.0.0/8, ::1, [::1]).

    The address is parsed, not matched as text: ``127.example.com`` is a hostname that may
    resolve anywhere, and ``0.0.0.0`` or ``::`` bind every interface.
    """
    text = host.strip().lower().removeprefix("[").removesuffix("]")
    if text == "localhost":
        return True
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (%lo) names no address
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))
