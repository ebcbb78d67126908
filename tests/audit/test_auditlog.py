"""django-auditlog on the domain and policy models: field-level changes, with the acting person."""

from __future__ import annotations

import re

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model

from approvals import models as domain
from approvals.accounts import agent_create

from .conftest import committed_life


def entries_for(obj):
    return LogEntry.objects.get_for_object(obj).order_by("id")


def test_domain_and_policy_models_are_registered_and_queues_are_not():
    for name in ["Tenant", "Membership", "AgentCredential", "UserToken", "Proposal", "Decision", "Receipt"]:
        assert auditlog.contains(getattr(domain, name)), name
    if hasattr(domain, "ToolPolicy"):
        assert auditlog.contains(domain.ToolPolicy)
    assert auditlog.contains(get_user_model())
    assert not auditlog.contains(domain.OutboxMessage)


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
    logged = " ".join(str(e.changes) for e in entries_for(proposal))
    assert "jane@example.com" not in logged
    # ...while the status walk of the proposal is there, field by field.
    statuses = [e.changes_dict["status"][1] for e in entries_for(proposal) if "status" in e.changes_dict]
    assert statuses[-1] == "committed"


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
    pid = acme.agent_client.post(
        "/api/v1/proposals/",
        {"tool": "crm.create_ticket", "args": {"subject": "s", "description": "d"}},
        format="json",
    ).json()["id"]

    response = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/reject/", {"reason": "no"}, format="json")

    assert response.status_code == 200
    proposal = domain.Proposal.objects.get(pk=pid)
    entry = entries_for(proposal).filter(action=LogEntry.Action.UPDATE).last()
    assert entry.changes_dict["status"] == ["pending", "rejected"]
    assert entry.actor == acme.reviewer


@pytest.mark.django_db
def test_a_proposals_life_is_logged_field_by_field_without_reading_the_locked_row_again(acme):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        proposal = committed_life(acme)
    queries = [q for q in captured.captured_queries if not q["sql"].endswith("LIMIT 21")]  # refresh_from_db

    updates = [e.changes_dict for e in entries_for(proposal).filter(action=LogEntry.Action.UPDATE)]
    assert [u["status"] for u in updates] == [
        ["pending", "approved"],
        ["approved", "committing"],
        ["committing", "committed"],
    ]
    # Only the row's own fields: its decisions and receipt have histories of their own.
    assert not any({"receipt", "decisions", "saga_steps"} & set(u) for u in updates)
    assert entries_for(proposal.receipt).filter(action=LogEntry.Action.CREATE).count() == 1
    # Each state change read the proposal once, under its row lock; django-auditlog did not read it again.
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


@pytest.mark.django_db
def test_a_proposal_saved_outside_the_services_is_still_logged_against_the_stored_row(acme):
    proposal = committed_life(acme)
    stale = domain.Proposal.objects.get(pk=proposal.pk)
    domain.Proposal.objects.filter(pk=proposal.pk).update(status_reason="changed meanwhile")

    stale.status_reason = "edited in a shell"
    stale.save(update_fields=["status_reason"])

    entry = entries_for(proposal).filter(action=LogEntry.Action.UPDATE).last()
    assert entry.changes_dict["status_reason"] == ["changed meanwhile", "edited in a shell"]
