"""One ``Retry-After``: every wait the gateway answers is whole seconds rounded up (never too early)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from adapters import errors as adapter_errors
from adapters.http import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, retry_after_seconds
from approvals import outbox
from approvals.api.errors import exception_handler


@pytest.mark.parametrize(
    ("seconds", "sent"),
    [
        (0.0, 1),
        (0.2, 1),
        (1.0, 1),
        (1.2, 2),
        (59.01, 60),
        (math.inf, int(MAX_RETRY_AFTER)),
        (math.nan, DEFAULT_RETRY_AFTER),
    ],
)
def test_a_wait_is_sent_as_whole_seconds_rounded_up(seconds: float, sent: int) -> None:
    assert retry_after_seconds(seconds) == sent


def test_a_rate_policy_answers_a_fractional_wait_rounded_up() -> None:
    response = exception_handler(
        adapter_errors.RateLimited(policy="p", check="max_per_hour", retry_after=2.4, detail="later"),  # type: ignore[arg-type]
        {},
    )

    assert response is not None and response.status_code == 429
    assert response["Retry-After"] == "3"
    assert response.data["retry_after"] == 3


def test_a_deferred_preview_answers_its_wait_rounded_up() -> None:
    response = exception_handler(
        adapter_errors.Deferred(reason="breaker_open", retry_at=time.time() + 7.3), {}
    )

    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == "8"  # 7.3 s (less the instants spent getting here), rounded up


@pytest.mark.django_db
def test_backpressure_answers_its_wait_rounded_up(acme: Any, settings: Any) -> None:
    settings.ACME_BACKPRESSURE_DEPTH = 0
    settings.ACME_BACKPRESSURE_RETRY_AFTER = 2.5
    outbox.stage_commit("00000000-0000-0000-0000-000000000001")

    response = acme.agent_client.post(
        "/api/v1/proposals/",
        {"tool": "slack.post_message", "args": {"channel": "#ops", "text": "hi"}},
        format="json",
    )

    assert response.status_code == 429
    assert response["Retry-After"] == "3"
    assert response.json()["retry_after"] == 3
