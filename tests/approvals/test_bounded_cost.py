"""Bounded cost at intake (issue 23, items 7 and 8): a huge body is refused before per-item work and counts
towards the agent's submission budget; live reads at preview are budgeted per agent and per connection."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.conf import settings

from adapters import normalize, preview_reads
from approvals import services
from approvals.accounts import agent_create
from approvals.models import Proposal

CRM = settings.CRM_BASE_URL
TICKET = {"subject": "Printer on fire", "description": "Floor 3"}
DIGEST = {"customer_email": "dana@example.com", "channel": "#accounts", "summary": "Renewal signed."}


def _submit(client: Any, tool: str, args: dict[str, Any]) -> Any:
    return client.post("/api/v1/proposals/", {"tool": tool, "args": args}, format="json")


@pytest.mark.django_db
class TestSubmissionBudget:
    def test_a_44k_tag_body_is_refused_at_once_and_counts_towards_the_agents_budget(
        self, acme, settings, monkeypatch
    ):
        settings.ACME_SUBMIT_BURST, settings.ACME_SUBMIT_RATE = 2, 0.01
        normalized: list[Any] = []
        real = normalize.clean_line

        def counting(value: Any) -> Any:
            normalized.append(value)
            return real(value)

        monkeypatch.setattr(normalize.fields, "clean_line", counting)  # where the tag rule calls it

        huge = _submit(acme.agent_client, "crm.create_ticket", {**TICKET, "tags": ["t"] * 44_000})
        other = _submit(acme.agent_client, "crm.create_ticket", {**TICKET, "priority": "nope"})
        fine = _submit(acme.agent_client, "crm.create_ticket", TICKET)

        assert huge.status_code == 400
        assert huge.json()["errors"][0]["loc"][:2] == ["args", "tags"]
        assert normalized.count("t") <= normalize.MAX_RAW_TAGS
        assert other.status_code == 400
        # Both refusals spent the budget: the valid third submission waits.
        assert fine.status_code == 429
        assert fine.json()["error"] == "rate_limited"
        assert fine.json()["policy"] == services.SUBMISSION_BUDGET
        assert int(fine["Retry-After"]) >= 1
        assert not Proposal.objects.exists()

    def test_the_budget_is_per_agent(self, acme, settings):
        settings.ACME_SUBMIT_BURST, settings.ACME_SUBMIT_RATE = 1, 0.01
        _, other_token = agent_create(tenant=acme.tenant, name="other-agent", tools=["*"])

        assert _submit(acme.agent_client, "crm.create_ticket", TICKET).status_code == 201
        assert _submit(acme.agent_client, "crm.create_ticket", TICKET).status_code == 429
        assert _submit(acme.client(other_token), "crm.create_ticket", TICKET).status_code == 201


@pytest.mark.django_db
class TestPreviewReads:
    def test_live_reads_at_preview_are_limited_per_agent_failed_submissions_included(self, acme, settings):
        settings.ACME_PREVIEW_READ_LIMITS = {
            "agent": {"rate": 0.01, "burst": 3},
            "connection": {"rate": 0.01, "burst": 100},
        }

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add(responses.GET, f"{CRM}/api/v2/users/search.json", json={"users": []})  # unknown: a 400
            answers = [
                _submit(acme.agent_client, "workflow.customer_update_digest", DIGEST) for _ in range(6)
            ]
            reads = len(rsps.calls)

        assert [a.status_code for a in answers] == [400, 400, 400, 429, 429, 429]
        assert reads == 3
        limited = answers[-1]
        assert limited.json()["error"] == "rate_limited"
        assert limited.json()["check"] == "preview_reads.agent"
        assert int(limited["Retry-After"]) >= 1

    def test_live_reads_at_preview_are_limited_per_connection(self, acme, settings):
        settings.ACME_PREVIEW_READ_LIMITS = {
            "agent": {"rate": 0.01, "burst": 100},
            "connection": {"rate": 0.01, "burst": 2},
        }
        _, other_token = agent_create(tenant=acme.tenant, name="other-agent", tools=["*"])

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add(
                responses.GET, f"{CRM}/api/v2/users/search.json", json={"users": [{"id": 5, "name": "Dana"}]}
            )
            first = [
                _submit(acme.agent_client, "workflow.customer_update_digest", {**DIGEST, "summary": f"n{i}"})
                for i in range(2)
            ]
            other = _submit(acme.client(other_token), "workflow.customer_update_digest", DIGEST)
            reads = len(rsps.calls)

        assert [a.status_code for a in first] == [201, 201]
        assert other.status_code == 429
        assert other.json()["check"] == "preview_reads.connection"
        assert reads == 2

    def test_the_defaults_leave_room_for_ordinary_use(self):
        limits = preview_reads.limits()
        assert limits["agent"]["burst"] >= 10 and limits["connection"]["burst"] >= limits["agent"]["burst"]
