"""Token buckets in Redis and the per-tool / per-tenant / per-channel limits."""

from __future__ import annotations

import time
from typing import Any

import pytest
import responses

from adapters import ratelimit, registry
from adapters.errors import Deferred


def test_bucket_allows_a_burst_then_reports_the_wait() -> None:
    assert [ratelimit.acquire("b", rate=2.0, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = ratelimit.acquire("b", rate=2.0, burst=3)
    assert 0.4 < wait <= 0.5


def test_bucket_refills_over_time() -> None:
    assert ratelimit.acquire("r", rate=20.0, burst=1) == 0.0
    assert ratelimit.acquire("r", rate=20.0, burst=1) > 0
    time.sleep(0.06)
    assert ratelimit.acquire("r", rate=20.0, burst=1) == 0.0


def test_a_refused_call_takes_no_token() -> None:
    ratelimit.acquire("n", rate=10.0, burst=1)
    first = ratelimit.acquire("n", rate=10.0, burst=1)
    second = ratelimit.acquire("n", rate=10.0, burst=1)
    assert second <= first  # waiting callers do not push each other further out


def test_slack_default_is_one_message_per_second_per_channel() -> None:
    ratelimit.enforce("slack.post_message", {"channel": "#support", "text": "a"})
    with pytest.raises(Deferred) as info:
        ratelimit.enforce("slack.post_message", {"channel": "#support", "text": "b"})
    assert info.value.reason == "rate_limited"
    assert time.time() < info.value.retry_at <= time.time() + 1.0
    ratelimit.enforce("slack.post_message", {"channel": "#general", "text": "c"})  # another channel


def test_per_tenant_limit_from_settings(settings: Any) -> None:
    settings.ACME_RATE_LIMITS = {"crm.create_ticket": {"per": ["tenant"], "rate": 0.5, "burst": 2}}
    for _ in range(2):
        ratelimit.enforce("crm.create_ticket", {}, tenant="acme")
    with pytest.raises(Deferred):
        ratelimit.enforce("crm.create_ticket", {}, tenant="acme")
    ratelimit.enforce("crm.create_ticket", {}, tenant="globex")


def test_tools_without_limits_are_not_limited() -> None:
    for _ in range(20):
        ratelimit.enforce("crm.update_ticket", {"ticket_id": 1})


def test_execute_defers_before_sending_when_over_the_limit(settings: Any) -> None:
    settings.SLACK_API_URL = "https://slack.test/api"
    args = {"channel": "#support", "text": "hello"}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        mocked.post(
            "https://slack.test/api/chat.postMessage", json={"ok": True, "channel": "C1", "ts": "1.0"}
        )
        registry.execute("slack.post_message", args, idempotency_key="k1")
        with pytest.raises(Deferred):
            registry.execute("slack.post_message", args, idempotency_key="k2")
        assert len(mocked.calls) == 1
