"""The shared circuit breaker's state machine, against the real Redis (namespaced per test)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from adapters import breaker
from adapters.errors import Deferred


@pytest.fixture(autouse=True)
def _small_breaker(settings: Any) -> None:
    settings.ACME_BREAKER_FAILURES = 3
    settings.ACME_BREAKER_COOLDOWN = 0.3


def fail(n: int, name: str = "crm") -> None:
    for _ in range(n):
        breaker.record_failure(breaker.acquire(name))


def test_opens_after_consecutive_failures_and_logs(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.breaker"):
        fail(2)
        assert breaker.state("crm") == "closed"
        fail(1)
    assert breaker.state("crm") == "open"
    assert [r.getMessage() for r in caplog.records] == ["circuit breaker tripped: crm"]
    assert breaker.trips("crm") == 1


def test_success_resets_the_consecutive_count() -> None:
    fail(2)
    breaker.record_success(breaker.acquire("crm"))
    fail(2)
    assert breaker.state("crm") == "closed"


def test_open_breaker_defers_until_half_open() -> None:
    fail(3)
    before = time.time()
    with pytest.raises(Deferred) as info:
        breaker.acquire("crm")
    assert info.value.reason == "breaker_open"
    assert before < info.value.retry_at <= before + 0.31


def test_downstreams_are_independent() -> None:
    fail(3, "crm")
    assert breaker.state("slack") == "closed"
    breaker.acquire("slack")


def test_exactly_one_probe_among_threads_then_success_closes() -> None:
    fail(3)
    time.sleep(0.35)
    assert breaker.state("crm") == "half_open"
    permits: list[breaker.Permit] = []
    deferred: list[Deferred] = []
    barrier = threading.Barrier(12)

    def contend() -> None:
        barrier.wait()
        try:
            permits.append(breaker.acquire("crm"))
        except Deferred as exc:
            deferred.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(permits) == 1 and permits[0].is_probe
    assert len(deferred) == 11
    breaker.record_success(permits[0])
    assert breaker.state("crm") == "closed"
    assert not breaker.acquire("crm").is_probe


def test_failed_probe_reopens_for_another_cooldown(caplog: Any) -> None:
    fail(3)
    time.sleep(0.35)
    probe = breaker.acquire("crm")
    assert probe.is_probe
    with caplog.at_level(logging.WARNING, logger="adapters.breaker"):
        breaker.record_failure(probe)
    assert breaker.state("crm") == "open"
    assert "circuit breaker tripped: crm" in caplog.text
    assert breaker.trips("crm") == 2
    with pytest.raises(Deferred):
        breaker.acquire("crm")


def test_a_late_non_probe_success_does_not_close_an_open_breaker() -> None:
    early = breaker.acquire("crm")  # sent before the breaker opened
    fail(3)
    breaker.record_success(early)
    assert breaker.state("crm") == "open"


def test_released_probe_lets_another_caller_probe() -> None:
    fail(3)
    time.sleep(0.35)
    probe = breaker.acquire("crm")
    breaker.release(probe)
    assert breaker.acquire("crm").is_probe


def test_on_trip_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(breaker, "on_trip", [seen.append, lambda name: 1 / 0])  # a broken hook is contained
    fail(3)
    assert seen == ["crm"]
