"""The operator dashboard: staff only, charts drawn server-side from the audit trail, receipts and Redis."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from adapters import breaker

from .conftest import committed_life


@pytest.fixture
def staff(client, db):
    # An operator: a superuser sees every tenant's figures and the shared ones (breakers, queues). A staff
    # user who is no superuser sees only their tenants' (tests/audit/test_admin_scope.py).
    client.force_login(get_user_model().objects.create_user("ops", password="pw-12345678", is_staff=True,
                                                            is_superuser=True))
    return client


def test_staff_see_the_charts(staff, acme, settings):
    committed_life(acme)
    settings.ACME_BREAKER_FAILURES = 2
    for _ in range(2):
        breaker.record_failure(breaker.acquire("crm"))

    response = staff.get("/ops/")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") >= 5
    for title in ["Approvals per hour", "Commit latency", "Queue depth", "open breaker", "Commits, rejections"]:
        assert title in page, title
    assert 'data-breaker="crm" data-state="open"' in page
    assert 'data-breaker="slack" data-state="closed"' in page
    assert "<script" not in page.split("<main", 1)[1]  # server-side charts: no JavaScript needed
    charts = response.context["charts"]
    assert "acme" not in str(charts["approvals"])  # no tenant data leaks into chart labels
    # The approval of this hour is in the last bar of the chart.
    assert "1</title></rect></svg>" in str(charts["approvals"])


def test_an_empty_system_still_renders(staff):
    assert staff.get("/ops/").status_code == 200


@pytest.mark.django_db
def test_people_who_are_not_staff_are_turned_away(client, acme):
    assert client.get("/ops/").status_code == 302  # anonymous: to the login page
    client.force_login(acme.reviewer)
    response = client.get("/ops/")
    assert response.status_code in (302, 403)
    assert "<svg" not in response.content.decode()
