"""Found by the redis-restart drill (drills/scenarios.py): a commit that meets Redis unavailable (the
breaker's or rate limits' state), possibly after the CRM call went through, is retried later with the same
idempotency key — never dead-lettered as failed. So is one that loses its own database connection."""

from __future__ import annotations

import pytest
import redis
from django.db import OperationalError, connection

from adapters import registry
from approvals import queues, services
from approvals.models import OutboxMessage, Status
from audit.services import Where

ARGS = {"subject": "Redis went away", "description": "Mid-commit.", "priority": "high"}


# What the outside call met: our own Redis (the breaker's or rate limits' state) unavailable, or — found by
# the pg-drop drill — our own database connection terminated while the CRM's ticket was being recorded.
# Marked failed, an approved write that may well have gone through would be dead-lettered; it is retried
# with the same idempotency key instead (the CRM answers with the same ticket).
def _database_gone() -> Exception:
    """What Django raises when PostgreSQL ends the session (pg_terminate_backend: admin_shutdown, 57P01)."""
    import psycopg

    lost = OperationalError("terminating connection due to administrator command")
    lost.__cause__ = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    return lost


GONE = {
    "redis": lambda: redis.ConnectionError("Error 111 connecting to redis. Connection refused."),
    "database": _database_gone,
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("gone", sorted(GONE))
def test_a_commit_that_loses_our_own_state_mid_call_is_deferred_not_failed(acme, monkeypatch, gone):
    monkeypatch.setattr(queues, "enqueue_commit", lambda proposal_id: True)  # the test runs the commit
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="web"))

    def unavailable(*args, **kwargs):
        raise GONE[gone]()

    if gone == "database" and connection.vendor != "postgresql":
        pytest.skip("a server that ends the session is PostgreSQL's")

    monkeypatch.setattr(registry, "execute", unavailable)

    result = services.proposal_commit(proposal_id=proposal.pk)

    proposal.refresh_from_db()
    assert result.outcome == "deferred"
    assert proposal.status == Status.APPROVED
    assert proposal.next_attempt_at is not None
    assert OutboxMessage.objects.filter(payload__proposal_id=str(proposal.pk)).exists()

    # Counted as an attempt (the database case) or not (Redis): either way the retry is not a first run.
    assert proposal.commit_attempts == (1 if gone == "database" else 0)


@pytest.mark.django_db(transaction=True)
def test_a_failed_statement_on_a_live_connection_fails_the_commit_as_before(acme, monkeypatch):
    """Deferring is for a connection that is gone: an error on a live one (a statement or lock timeout) would
    be deferred and repeated forever."""
    monkeypatch.setattr(queues, "enqueue_commit", lambda proposal_id: True)  # the test runs the commit
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="web"))

    def timed_out(*args, **kwargs):
        import psycopg

        failed = OperationalError("canceling statement due to statement timeout")
        failed.__cause__ = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
        raise failed

    monkeypatch.setattr(registry, "execute", timed_out)

    result = services.proposal_commit(proposal_id=proposal.pk)

    proposal.refresh_from_db()
    assert result.outcome == "failed"
    assert proposal.status == Status.FAILED
