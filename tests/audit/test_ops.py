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
    client.force_login(
        get_user_model().objects.create_user("ops", password="pw-12345678", is_staff=True, is_superuser=True)
    )
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
    for title in [
        "Approvals per hour",
        "Commit latency",
        "Queue depth",
        "open breaker",
        "Commits, rejections",
    ]:
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


def test_the_dashboard_reads_easily(staff, acme):
    """Legible axis text, outcome colours that mean what they say, a humanized wait, and the dead letters
    linked to where they are acted on (issue 24, item 10)."""
    from datetime import timedelta

    from django.utils import timezone

    from approvals import services
    from approvals.models import Proposal, Status
    from audit import charts
    from tests.audit.conftest import API, ARGS

    waiting = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=API
    ).proposal
    Proposal.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=334))
    failed = committed_life(acme, args={**ARGS, "subject": "Will fail"})
    Proposal.objects.filter(pk=failed.pk).update(status=Status.FAILED)

    response = staff.get("/ops/")
    page = response.content.decode()
    flows = str(response.context["charts"]["flows"])

    assert (
        'font-size="10"' not in page and f'font-size="{charts.FONT_SIZE}"' in page and charts.FONT_SIZE >= 12
    )
    assert f'fill="{charts.OUTCOME_COLORS["failed"]}">■ failed' in flows
    assert '#16a34a">■ failed' not in flows  # failed is not drawn in green
    assert "the oldest has waited <span" in page and "5 min 3" in page and "334 s." not in page
    assert 'href="/admin/approvals/proposal/?dead_letter=waiting"' in page
    assert 'href="/ops/"' in page  # the navigation leads here


def test_x_labels_never_overlap():
    from audit import charts

    points = [(f"commits-queue-{n} scheduled", float(n)) for n in range(12)]
    svg = str(charts.bar_chart(points, title="Queue depth by state"))

    import itertools
    import re

    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)"[^>]*text-anchor="middle"', svg)]
    assert len(xs) >= 2
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert min(gaps) >= len(points[0][0]) * charts._CHAR_WIDTH  # each label shown has room for itself
