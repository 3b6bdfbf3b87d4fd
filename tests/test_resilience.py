"""The retry and circuit-breaker policy of :mod:`adcore.services.resilience`, on plain calls.

What a service outage looks like to adcore is tested with the real servers in
tests/test_faults.py; here the policy itself: which failures are retried, how many times,
when the breaker opens, what the caller gets, and that it closes again.
"""

from __future__ import annotations

import threading
import time

import pytest

from adcore.errors import ParameterError, ServiceUnavailableError, StoreUnavailableError
from adcore.services import resilience


class Flaky(Exception):
    """Stands for a refused connection."""


class Permanent(Exception):
    """Stands for 'no such table' or 'access denied'."""


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Flaky)


@pytest.fixture(autouse=True)
def fast_policy(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADCORE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("ADCORE_RETRY_TIMEOUT_S", "5")
    monkeypatch.setenv("ADCORE_BREAKER_FAILURES", "4")
    monkeypatch.setenv("ADCORE_BREAKER_RESET_S", "0.5")
    resilience.forget_dependencies()
    yield
    resilience.forget_dependencies()


class Service:
    """A callable that fails ``failures`` times with ``error``, then answers."""

    def __init__(self, failures: int, error: type[Exception] = Flaky) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls} refused")
        return "answer"


def test_a_transient_failure_is_retried_and_the_call_succeeds():
    dep = resilience.dependency("postgres", "db:5432", transient)
    service = Service(failures=2)
    assert dep.call(service, action="reading the index") == "answer"
    assert service.calls == 3
    assert dep.stats.retries == 2 and dep.stats.failures == 0
    assert dep.state == resilience.CLOSED


def test_when_retries_run_out_the_caller_gets_a_503_error_naming_the_service_and_the_cause():
    dep = resilience.dependency("postgres", "db:5432", transient)
    service = Service(failures=10)
    with pytest.raises(StoreUnavailableError) as caught:
        dep.call(service, action="reading the index", error=StoreUnavailableError)
    assert service.calls == 3
    message = str(caught.value)
    expected = "reading the index failed: postgres at db:5432 is unavailable: attempt 3 refused"
    assert message.startswith(expected)
    assert "\n" not in message
    assert caught.value.http_status == 503
    assert caught.value.headers == {"Retry-After": "1"}
    assert caught.value.extra == {"retry_after": 1, "dependency": "postgres"}


def test_a_permanent_error_passes_through_untouched_once_and_never_trips_the_breaker():
    dep = resilience.dependency("s3", "s3:9000", transient)
    for _ in range(10):
        service = Service(failures=1, error=Permanent)
        with pytest.raises(Permanent):
            dep.call(service, action="download")
        assert service.calls == 1
    assert dep.state == resilience.CLOSED
    assert dep.stats.failures == 0


def test_the_breaker_opens_after_repeated_failures_then_refuses_at_once_with_retry_after():
    dep = resilience.dependency("redis", "queue:6379", transient)
    down = Service(failures=1000)
    with pytest.raises(ServiceUnavailableError):
        dep.call(down, action="submitting")  # 3 failures
    with pytest.raises(ServiceUnavailableError):
        dep.call(down, action="submitting")  # the 4th opens it; no 5th attempt
    assert down.calls == 4
    assert dep.state == resilience.OPEN
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as caught:
        dep.call(down, action="submitting")
    assert time.monotonic() - started < 0.05  # refused without calling or waiting
    assert down.calls == 4
    assert "circuit open after repeated failures (attempt 4 refused)" in str(caught.value)
    assert 0 < caught.value.retry_after <= 0.5
    assert dep.stats.rejected >= 1 and dep.stats.opened == 1
    assert resilience.open_breakers() == [dep]


def test_after_the_reset_time_one_trial_call_closes_the_breaker_when_the_service_is_back():
    dep = resilience.dependency("redis", "queue:6379", transient)
    down = Service(failures=1000)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError):
            dep.call(down, action="x")
    assert dep.state == resilience.OPEN
    time.sleep(0.55)
    assert dep.state == resilience.HALF_OPEN
    back = Service(failures=0)
    assert dep.call(back, action="x") == "answer"
    assert back.calls == 1
    assert dep.state == resilience.CLOSED
    assert resilience.open_breakers() == []


def test_a_failed_trial_reopens_the_breaker_for_another_reset_period():
    dep = resilience.dependency("redis", "queue:6379", transient)
    down = Service(failures=1000)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError):
            dep.call(down, action="x")
    time.sleep(0.55)
    calls = down.calls
    with pytest.raises(ServiceUnavailableError):
        dep.call(down, action="x")
    assert down.calls == calls + 1  # one trial, then refused again
    assert dep.state == resilience.OPEN
    assert dep.retry_after() > 0.3


def test_a_call_that_is_not_idempotent_gets_one_attempt():
    dep = resilience.dependency("redis", "queue:6379", transient)
    service = Service(failures=1)
    with pytest.raises(ServiceUnavailableError):
        dep.call(service, action="submitting", idempotent=False)
    assert service.calls == 1


def test_the_time_budget_bounds_a_call_whatever_the_attempt_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADCORE_RETRY_ATTEMPTS", "1000")
    monkeypatch.setenv("ADCORE_RETRY_TIMEOUT_S", "0.6")
    monkeypatch.setenv("ADCORE_BREAKER_FAILURES", "1000")
    resilience.forget_dependencies()
    dep = resilience.dependency("mlflow", "tracking:5000", transient)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        dep.call(Service(failures=10**6), action="logging")
    assert time.monotonic() - started < 3.0


def test_one_dependency_per_kind_and_target_shared_by_every_thread():
    found: list[resilience.Dependency] = []
    threads = [
        threading.Thread(target=lambda: found.append(resilience.dependency("s3", "a:1", transient)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(d) for d in found}) == 1
    assert resilience.dependency("s3", "b:1", transient) is not found[0]


def test_calls_through_one_breaker_are_not_serialised():
    """pybreaker's own call() holds a lock for the whole call: one slow read would block all."""
    dep = resilience.dependency("postgres", "db:5432", transient)
    barrier = threading.Barrier(4, timeout=2)

    def meet() -> str:
        barrier.wait()  # only passes if all four calls are inside at once
        return "ok"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(dep.call(meet, action="x"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 4


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ADCORE_RETRY_ATTEMPTS", "0", "ADCORE_RETRY_ATTEMPTS='0' must be at least 1"),
        ("ADCORE_RETRY_ATTEMPTS", "2.5", "ADCORE_RETRY_ATTEMPTS='2.5' is not an integer"),
        ("ADCORE_BREAKER_RESET_S", "soon", "ADCORE_BREAKER_RESET_S='soon' is not a number"),
        ("ADCORE_RETRY_TIMEOUT_S", "nan", "ADCORE_RETRY_TIMEOUT_S='nan' must be at least 0.001"),
    ],
)
def test_bad_settings_are_one_line_parameter_errors(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ParameterError, match="^" + message.replace(".", r"\.") + "$"):
        resilience.Policy.from_env()


def test_breakers_and_counts_are_exported_as_prometheus_metrics():
    pytest.importorskip("prometheus_client", reason="the server extra is not installed")
    from adcore.server.metrics import ServerMetrics

    dep = resilience.dependency("postgres", "db:5432", transient)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError):
            dep.call(Service(failures=1000), action="x")
    with pytest.raises(ServiceUnavailableError):
        dep.call(Service(failures=0), action="x")  # refused: the breaker is open
    text = ServerMetrics().exposition().decode()
    where = 'dependency="postgres",target="db:5432"'
    assert 'adcore_circuit_breaker_state{dependency="postgres",state="open",target="db:5432"} 1.0' in text
    assert 'adcore_circuit_breaker_state{dependency="postgres",state="closed",target="db:5432"} 0.0' in text
    assert f"adcore_dependency_calls_total{{{where}}} 3.0" in text
    assert f"adcore_dependency_retries_total{{{where}}} 2.0" in text
    assert f"adcore_dependency_rejected_total{{{where}}} 1.0" in text
    assert f"adcore_circuit_breaker_opened_total{{{where}}} 1.0" in text
