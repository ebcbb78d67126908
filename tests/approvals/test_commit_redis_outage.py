"""Found by the redis-restart drill (drills/scenarios.py): a commit that meets Redis unavailable (the
breaker's or rate limits' state), possibly after the CRM call went through, is retried later with the same
idempotency key — never dead-lettered as failed. So is one that loses its own database connection."""

from __future__ import annotations

import pytest
import redis
from django.db import OperationalError

from adapters import registry
from approvals import services
from approvals.models import OutboxMessage, Status
from audit.services import Where

ARGS = {"subject": "Redis went away", "description": "Mid-commit.", "priority": "high"}


# What the outside call met: our own Redis (the breaker's or rate limits' state) unavailable, or — found by
# the pg-drop drill — our own database connection terminated while the CRM's ticket was being recorded.
# Marked failed, an approved write that may well have gone through would be dead-lettered; it is retried
# with the same idempotency key instead (the CRM answers with the same ticket).
GONE = {
    "redis": lambda: redis.ConnectionError("Error 111 connecting to redis. Connection refused."),
    "database": lambda: OperationalError("terminating connection due to administrator command"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("gone", sorted(GONE))
def test_a_commit_that_loses_our_own_state_mid_call_is_deferred_not_failed(acme, monkeypatch, gone):
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="web"))

    def unavailable(*args, **kwargs):
        raise GONE[gone]()

    monkeypatch.setattr(registry, "execute", unavailable)

    result = services.proposal_commit(proposal_id=proposal.pk)

    proposal.refresh_from_db()
    assert result.outcome == "deferred"
    assert proposal.status == Status.APPROVED
    assert proposal.next_attempt_at is not None
    assert OutboxMessage.objects.filter(payload__proposal_id=str(proposal.pk)).exists()
