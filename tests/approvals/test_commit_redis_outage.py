"""Found by the redis-restart drill (drills/scenarios.py): a commit that meets Redis unavailable (the
breaker's or rate limits' state), possibly after the CRM call went through, is retried later with the same
idempotency key — never dead-lettered as failed."""

from __future__ import annotations

import pytest
import redis

from adapters import registry
from approvals import services
from approvals.models import OutboxMessage, Status
from audit.services import Where

ARGS = {"subject": "Redis went away", "description": "Mid-commit.", "priority": "high"}


@pytest.mark.django_db
def test_a_commit_that_meets_redis_down_is_deferred_not_failed(acme, monkeypatch):
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="web"))

    def redis_gone(*args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to redis. Connection refused.")

    monkeypatch.setattr(registry, "execute", redis_gone)

    result = services.proposal_commit(proposal_id=proposal.pk)

    proposal.refresh_from_db()
    assert result.outcome == "deferred"
    assert proposal.status == Status.APPROVED
    assert proposal.next_attempt_at is not None
    assert OutboxMessage.objects.filter(payload__proposal_id=str(proposal.pk)).exists()


@pytest.mark.django_db
def test_a_commit_that_loses_its_database_mid_call_is_deferred_not_failed(acme, monkeypatch):
    """Found by the pg-drop drill: the CRM write went through, then keeping its record met a terminated
    database connection. Marked failed, the approved write was lost to the reviewer's eyes; it is retried
    with the same idempotency key instead (the CRM answers with the same ticket)."""
    from django.db import OperationalError

    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="web"))

    def database_gone(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(registry, "execute", database_gone)

    result = services.proposal_commit(proposal_id=proposal.pk)

    proposal.refresh_from_db()
    assert result.outcome == "deferred"
    assert proposal.status == Status.APPROVED
    assert proposal.next_attempt_at is not None
