"""django-auditlog where field history is the point (tenants, agents, tokens, policies, reviewer groups,
connections, users): field-level changes, with the acting person. A proposal, its decision and its receipt
are not in it: their history is the audit trail (tests/audit/test_trail_history.py)."""

from __future__ import annotations

import re

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.auth import get_user_model

from adapters.models import Connection
from approvals import models as domain
from approvals.accounts import agent_create
from audit.models import AuditEvent
from tests.conftest import own_connection

from .conftest import committed_life


def entries_for(obj):
    return LogEntry.objects.get_for_object(obj).order_by("id")


def test_configuration_models_are_registered_and_proposals_and_queues_are_not():
    for name in ["Tenant", "Membership", "AgentCredential", "UserToken", "ToolPolicy", "ReviewerGroup"]:
        assert auditlog.contains(getattr(domain, name)), name
    assert auditlog.contains(Connection)
    assert auditlog.contains(get_user_model())
    # A proposal's own rows: every change of them is an audit event (approvals.lifecycle).
    for name in [
        "Proposal",
        "Decision",
        "Receipt",
        "OutboxMessage",
        "Approval",
        "ReviewSnooze",
        "SlackPost",
        "ReviewerEmail",
    ]:
        assert not auditlog.contains(getattr(domain, name)), name


@pytest.mark.django_db
def test_an_orm_change_is_logged_field_by_field_with_the_actor(acme):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")

    with set_actor(admin):
        acme.agent.allowed_tools = ["crm.create_ticket"]
        acme.agent.save()

    entry = entries_for(acme.agent).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    assert set(entry.changes_dict) == {"allowed_tools"}
    before, after = entry.changes_dict["allowed_tools"]
    assert "*" in before and "crm.create_ticket" in after


@pytest.mark.django_db
def test_secrets_and_customer_args_are_never_in_the_change_log(acme):
    agent, token = agent_create(tenant=acme.tenant, name="second", tools=["*"])
    proposal = committed_life(
        acme, args={"subject": "Card", "description": "call jane@example.com", "priority": "high"}
    )

    created = entries_for(agent).get(action=LogEntry.Action.CREATE)
    assert "token_hash" not in created.changes_dict
    assert token not in str(created.changes) and agent.token_hash not in str(created.changes)
    # A proposal's life, its decision and its receipt write no change log at all (the audit trail has them).
    assert not entries_for(proposal).exists()
    assert not entries_for(proposal.decisions.get()).exists()
    assert not entries_for(proposal.receipt).exists()
    assert "jane@example.com" not in " ".join(str(e.changes) for e in LogEntry.objects.all())


@pytest.mark.django_db
def test_a_connections_history_never_holds_its_token_or_signing_secret(acme):
    own_connection("acme", "crm", token="crm-token-very-secret", signing_secret="crm-signing-very-secret")
    own_connection("acme", "crm", base_url=settings.CRM_BASE_URL + "/v2", token="crm-token-rotated")
    row = Connection.objects.get(tenant="acme", system="crm")

    entries = list(entries_for(row))
    logged = " ".join(str(e.changes) for e in entries)

    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert entries[1].changes_dict["base_url"] == [settings.CRM_BASE_URL, row.base_url]
    for secret in ("crm-token-very-secret", "crm-signing-very-secret", "crm-token-rotated"):
        assert secret not in logged
    assert "token_encrypted" not in logged and "signing_secret_encrypted" not in logged
    assert row.token_encrypted not in logged and row.signing_secret_encrypted not in logged


@pytest.mark.django_db
def test_who_joined_or_left_a_reviewer_group_is_logged(acme):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    group = domain.ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")

    with set_actor(admin):
        group.members.add(acme.reviewer)
        group.members.remove(acme.reviewer)

    changes = [e.changes_dict["members"] for e in entries_for(group) if "members" in e.changes_dict]
    assert changes == [
        {"type": "m2m", "operation": "add", "objects": [str(acme.reviewer)]},
        {"type": "m2m", "operation": "delete", "objects": [str(acme.reviewer)]},
    ]
    assert all(e.actor == admin for e in entries_for(group).filter(action=LogEntry.Action.UPDATE))


@pytest.mark.django_db
def test_an_admin_edit_is_logged_with_the_logged_in_person(client, acme):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client.force_login(admin)

    response = client.post(
        f"/admin/approvals/tenant/{acme.tenant.pk}/change/", {"slug": "acme", "name": "ACME Corporation"}
    )

    assert response.status_code == 302, response.content[:2000]
    entry = entries_for(acme.tenant).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    assert entry.changes_dict["name"] == ["Acme", "ACME Corporation"]
    assert entry.remote_addr == "127.0.0.1"


@pytest.mark.django_db
def test_a_change_made_with_a_persons_api_token_is_logged_with_that_person(acme):
    """No endpoint a person's token reaches writes a registered model today (a proposal's rows are not
    registered): the request here is the API's own middleware and authentication, around a change of a
    registered row, as a future endpoint would make it."""
    from django.http import HttpResponse
    from django.test import RequestFactory
    from rest_framework.request import Request

    from approvals.api.auth import BearerTokenAuthentication
    from audit.where import AuditlogMiddleware

    def view(request):
        authenticated = BearerTokenAuthentication().authenticate(Request(request))
        assert authenticated is not None
        user = authenticated[0]
        tenant = domain.Tenant.objects.get(pk=acme.tenant.pk)
        tenant.name = "Renamed by token"
        tenant.save()
        return HttpResponse(user.get_username())

    request = RequestFactory().post("/api/v1/x/", HTTP_AUTHORIZATION=f"Bearer {acme.reviewer_token}")
    response = AuditlogMiddleware(view)(request)

    assert response.content == b"acme-reviewer"
    entry = entries_for(acme.tenant).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == acme.reviewer
    assert entry.changes_dict["name"] == ["Acme", "Renamed by token"]


@pytest.mark.django_db
def test_a_proposals_life_writes_no_change_log_and_reads_the_locked_row_once_per_change(acme):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        proposal = committed_life(acme)
    queries = [q for q in captured.captured_queries if not q["sql"].endswith("LIMIT 21")]  # refresh_from_db

    written = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "auditlog_logentry"')]
    assert written == []  # none for the proposal, its approval, its decision or its receipt
    # The status walk is in the audit trail instead.
    walk = AuditEvent.objects.filter(subject_type="proposal", subject_id=str(proposal.pk)).order_by("id")
    assert [e.data["status"] for e in walk if e.action.startswith("proposal.")] == [
        "pending",
        "approved",
        "committing",
        "committed",
    ]
    # Each state change read the proposal once, under its row lock.
    # (Reads by idempotency key are the submission's look-up of an earlier proposal of the same derived key,
    # not a read of this row: approvals.services.submit._derived_keys.)
    reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT "approvals_proposal"."id"')
        and '"approvals_proposal"."idempotency_key" =' not in q["sql"]
    ]
    locked_reads = [sql for sql in reads if re.search(r"\bFOR (NO KEY )?UPDATE\b", sql)]
    plain_reads = [sql for sql in reads if sql not in locked_reads]
    if connection.vendor == "postgresql":
        assert len(locked_reads) == 3 and plain_reads == []
