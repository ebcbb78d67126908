"""Fixtures for the audit and observability tests."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.conf import settings

from approvals import services
from audit.services import Where

API = Where(channel="api", ip="203.0.113.7", user_agent="agent-sdk/1.0")
WEB = Where(channel="web", ip="198.51.100.4", user_agent="Mozilla/5.0")
TICKETS_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets.json"
ARGS = {"subject": "Broken login", "description": "Users cannot log in.", "priority": "high"}


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.http.sleep", lambda seconds: None)


def created(rsps: responses.RequestsMock, ticket_id: int = 77) -> None:
    rsps.add(
        responses.POST,
        TICKETS_URL,
        status=201,
        json={
            "ticket": {
                "id": ticket_id,
                "subject": "Broken login",
                "priority": "high",
                "status": "new",
                "updated_at": "2026-11-23T10:00:00Z",
            }
        },
    )


def committed_life(party: Any, args: dict[str, Any] | None = None, ticket_id: int = 77) -> Any:
    """submit (api) -> approve (web) -> commit (worker), the CRM mocked at the adapter boundary."""
    proposal = services.proposal_submit(
        agent=party.agent, tool="crm.create_ticket", args=args or ARGS, where=API
    ).proposal
    services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=WEB, comment="ok")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        created(rsps, ticket_id)
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"
    proposal.refresh_from_db()
    return proposal
