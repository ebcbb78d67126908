"""/metrics: Prometheus text, per tool and downstream, merged across processes; the breaker opening
after the CRM fails 5 times shows as state=open and one more trip."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

from approvals import services
from approvals.models import Proposal, Status

from .conftest import API, ARGS, TICKETS_URL, WEB, created


def scrape(client: Any, **headers: str) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels (0.0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.fixture
def staff(client, db):
    # An operator: the figures count every tenant, so a session reads them only as a superuser (a tenant
    # admin is staff too: tests/audit/test_admin_scope.py).
    user = get_user_model().objects.create_user(
        "ops", password="pw-12345678", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


@pytest.fixture
def five_strikes(settings):
    settings.ACME_RETRY_MAX = 5
    settings.ACME_BREAKER_FAILURES = 5
    settings.ACME_BREAKER_COOLDOWN = 30


def approved(party, subject="Broken login"):
    args = {**ARGS, "subject": subject}
    proposal = services.proposal_submit(
        agent=party.agent, tool="crm.create_ticket", args=args, where=API
    ).proposal
    return services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=WEB)


def test_the_breaker_opening_after_five_failures_shows_in_metrics(
    staff, acme, five_strikes, no_sleep, settings
):
    # A budget of five attempts: the first commit's five are all it may spend, so it is dead-lettered
    # (with a larger budget it would wait for the breaker: tests/approvals/test_services.py).
    settings.ACME_COMMIT_MAX_ATTEMPTS = 5
    before = scrape(staff)
    assert value(before, "acme_breaker_state", downstream="crm", state="closed") == 1.0
    calls = dict(tool="crm.create_ticket", downstream="crm")
    proposal = approved(acme)

    # when: the CRM answers 503 to every one of the 5 attempts
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TICKETS_URL, status=503)
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"
        assert len(rsps.calls) == 5

    # then
    after = scrape(staff)
    assert value(after, "acme_breaker_state", downstream="crm", state="open") == 1.0
    assert value(after, "acme_breaker_state", downstream="crm", state="closed") == 0.0
    assert value(after, "acme_breaker_state", downstream="slack", state="closed") == 1.0
    assert (
        value(after, "acme_breaker_trips_total", downstream="crm")
        == value(before, "acme_breaker_trips_total", downstream="crm") + 1
    )

    # Counters are deltas: other processes sharing the multiprocess directory may have counted too.
    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("acme_outbound_calls_total", **calls, outcome="transient_failure") == 1
    assert delta("acme_outbound_retries_total", **calls) == 4
    assert delta("acme_outbound_attempts_total", **calls, result="5xx") == 5
    assert delta("acme_outbound_request_duration_seconds_count", **calls) == 5
    # ...and the failed commit is a dead letter until requeued or discarded
    assert Proposal.objects.get(pk=proposal.pk).status == Status.FAILED
    assert value(after, "acme_dead_letters", tool="crm.create_ticket") == 1.0

    # While open, a commit is deferred without a request leaving.
    second = approved(acme, subject="Another one")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        created(rsps)
        assert services.proposal_commit(proposal_id=second.pk).outcome == "deferred"
        assert len(rsps.calls) == 0
    assert (
        value(scrape(staff), "acme_outbound_calls_total", **calls, outcome="deferred")
        == value(after, "acme_outbound_calls_total", **calls, outcome="deferred") + 1
    )


def test_success_latency_pending_and_queue_figures(staff, acme, no_sleep):
    before = scrape(staff)
    calls = dict(tool="crm.create_ticket", downstream="crm")
    services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args={**ARGS, "subject": "Still waiting"}, where=API
    )
    proposal = approved(acme)

    with responses.RequestsMock() as rsps:
        created(rsps)
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"

    after = scrape(staff)
    assert (
        value(after, "acme_outbound_calls_total", **calls, outcome="ok")
        - value(before, "acme_outbound_calls_total", **calls, outcome="ok")
        == 1
    )
    assert value(after, "acme_outbound_request_duration_seconds_bucket", **calls, le="+Inf") >= 1
    assert value(after, "acme_proposals_pending", tool="crm.create_ticket") == 1.0
    assert value(after, "acme_proposal_oldest_pending_age_seconds", tool="crm.create_ticket") >= 0.0
    assert "acme_proposal_oldest_pending_age_seconds" in after
    assert 'acme_queue_jobs{queue="commits",state="queued"}' in after


def test_rate_limit_waits_are_counted(staff, settings):
    from adapters import ratelimit
    from adapters.errors import Deferred

    settings.ACME_RATE_LIMITS = {"slack.post_message": [{"per": ["channel"], "rate": 0.01, "burst": 1}]}
    before = scrape(staff)
    ratelimit.enforce("slack.post_message", {"channel": "#ops"}, tenant="acme")
    with pytest.raises(Deferred):
        ratelimit.enforce("slack.post_message", {"channel": "#ops"}, tenant="acme")

    after = scrape(staff)
    assert (
        value(after, "acme_ratelimit_waits_total", tool="slack.post_message")
        - value(before, "acme_ratelimit_waits_total", tool="slack.post_message")
        == 1
    )
    assert value(after, "acme_ratelimit_wait_seconds_total", tool="slack.post_message") > value(
        before, "acme_ratelimit_wait_seconds_total", tool="slack.post_message"
    )


@pytest.mark.django_db
def test_metrics_are_not_public(client, settings):
    settings.DEBUG = False
    settings.ACME_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403

    settings.ACME_METRICS_TOKEN = "scrape-secret-1"
    denied = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert denied.status_code == 401 and denied["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-1").status_code == 200

    user = get_user_model().objects.create_user("someone", password="pw-12345678")
    client.force_login(user)
    assert client.get("/metrics").status_code == 401
    user.is_staff = True  # staff is not enough: a tenant admin is staff
    user.save()
    assert client.get("/metrics").status_code == 401
    user.is_superuser = True
    user.save()
    assert client.get("/metrics").status_code == 200


def test_a_previews_live_read_is_counted_under_its_tool(staff, acme, no_sleep, settings):
    """Preview reads (and workflow steps) were labelled tool="none"."""
    from adapters import registry
    from tests.conftest import own_connection

    own_connection("acme")
    before = scrape(staff)
    calls = dict(tool="crm.update_ticket", downstream="crm", outcome="ok")

    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            f"{settings.CRM_BASE_URL}/api/v2/tickets/5.json",
            json={"ticket": {"id": 5, "status": "open", "updated_at": "2026-01-01T00:00:00Z"}},
        )
        registry.prepare(
            "crm.update_ticket",
            {"ticket_id": 5, "status": "solved"},
            registry.Context(tenant="acme", agent="bot"),
        )

    after = scrape(staff)
    assert (
        value(after, "acme_outbound_calls_total", **calls)
        - value(before, "acme_outbound_calls_total", **calls)
        == 1
    )
    assert value(after, "acme_outbound_calls_total", tool="none", downstream="crm", outcome="ok") == value(
        before, "acme_outbound_calls_total", tool="none", downstream="crm", outcome="ok"
    )
