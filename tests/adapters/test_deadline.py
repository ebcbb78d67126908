"""http.deadline: calls someone is waiting on (a live preview) get a short total budget."""

from __future__ import annotations

import time

import pytest
import responses
from django.conf import settings

from adapters import http
from adapters.errors import TransientFailure
from tests.conftest import own_connection

URL = f"{settings.CRM_BASE_URL}/api/v2/tickets/5.json"


def test_a_deadline_cuts_the_retry_schedule_short(settings):
    settings.ACME_RETRY_MAX = 10
    settings.ACME_RETRY_BASE = 0.2
    settings.ACME_BREAKER_FAILURES = 100
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, URL, status=503)
        started = time.monotonic()
        with pytest.raises(TransientFailure), http.deadline(0.5):
            http.call("crm", "GET", URL)
        elapsed = time.monotonic() - started
        attempts = len(rsps.calls)

    assert elapsed < 0.9
    assert 1 <= attempts < 10  # without the deadline all ten attempts would run (several seconds)


def test_each_attempt_waits_no_longer_than_the_time_left(monkeypatch):
    seen: list[float] = []
    real = http._Session.request

    def spy(self, method, url, *args, **kwargs):
        seen.append(kwargs["timeout"])
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(http._Session, "request", spy)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, URL, json={"ok": True})
        with http.deadline(1.5):
            http.call("crm", "GET", URL)
        http.call("crm", "GET", URL)

    assert seen[0] <= 1.5
    assert seen[1] == settings.ACME_HTTP_TIMEOUT  # outside a deadline: the configured timeout


@pytest.mark.django_db
def test_a_slow_crm_makes_submission_a_fast_503_not_a_hang(acme, settings):
    own_connection("acme")  # acme's own CRM: ticket 5 there is its own (contract 6, tenant isolation outside)
    settings.ACME_PREVIEW_DEADLINE = 0.5
    settings.ACME_RETRY_BASE = 0.2
    settings.ACME_BREAKER_FAILURES = 100
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, URL, status=503)
        started = time.monotonic()
        response = acme.agent_client.post(
            "/api/v1/proposals/",
            {"tool": "crm.update_ticket", "args": {"ticket_id": 5, "priority": "high"}},
            format="json",
        )
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["error"] == "downstream_unavailable"
    assert int(response["Retry-After"]) >= 1
    assert elapsed < 1.5
    from approvals.models import Proposal

    assert not Proposal.objects.exists()
