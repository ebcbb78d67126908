"""Issue 17: one tenant must not read or overwrite another tenant's tickets.

Each tenant's calls go to its own connection (``set_connection``) or, without one, to the environment's
default CRM, which the tenants without a connection share. On a shared CRM a tenant reaches only the
tickets the gateway created for it; anything else is "ticket not found", decided before any request.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.conf import settings

from adapters import breaker, registry
from adapters.errors import TransientFailure
from adapters.models import CreatedRecord
from approvals import services
from approvals.models import Proposal, Receipt, Status
from audit.models import AuditEvent
from audit.services import Where
from tests.conftest import own_connection

API = Where(channel="api")
UPDATED_AT = "2026-11-23T10:00:00Z"
SECRET_SUBJECT = "Acme's confidential merger ticket"


def crm_ticket(ticket_id: int, **overrides: Any) -> dict[str, Any]:
    return {
        "ticket": {
            "id": ticket_id,
            "subject": SECRET_SUBJECT,
            "priority": "high",
            "status": "open",
            "tags": ["m-and-a"],
            "created_at": UPDATED_AT,
            "updated_at": UPDATED_AT,
            **overrides,
        }
    }


def propose(party: Any, tool: str, args: dict[str, Any]) -> Any:
    return party.agent_client.post("/api/v1/proposals/", {"tool": tool, "args": args}, format="json")


def create_through_the_gateway(party: Any, ticket_id: int, base_url: str | None = None) -> Proposal:
    """``party`` proposes a ticket, its reviewer approves, the commit creates ``ticket_id`` in its CRM."""
    response = propose(
        party, "crm.create_ticket", {"subject": "Printer", "description": "Smoke", "priority": "high"}
    )
    assert response.status_code == 201, response.content
    proposal = Proposal.objects.get(pk=response.json()["id"])
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{base_url or settings.CRM_BASE_URL}/api/v2/tickets.json",
            status=201,
            json=crm_ticket(ticket_id),
        )
        services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)
        services.proposal_commit(proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.status == Status.COMMITTED
    return proposal


def ticket_url(ticket_id: int, base_url: str | None = None) -> str:
    return f"{base_url or settings.CRM_BASE_URL}/api/v2/tickets/{ticket_id}.json"


@pytest.fixture(autouse=True)
def _crm(settings: Any, fast_retries: None, sleeps: list[float]) -> None:
    settings.CRM_BASE_URL = "https://shared-crm.test"
    settings.CRM_API_TOKEN = "shared-token"


@pytest.mark.django_db
class TestSharedCrm:
    def test_another_tenants_ticket_is_not_found_and_the_crm_hears_nothing(self, acme, globex):
        # given acme created ticket 77 through the gateway, on the CRM both tenants share
        create_through_the_gateway(acme, 77)

        # when globex's agent proposes an update of it
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add(responses.GET, ticket_url(77), json=crm_ticket(77))
            response = propose(globex, "crm.update_ticket", {"ticket_id": 77, "priority": "low"})
            sent = len(rsps.calls)

        # then it is "ticket not found", nothing of the ticket is shown, and no request left
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["error"] == "invalid_args"
        assert body["errors"][0]["msg"] == "ticket not found"
        assert SECRET_SUBJECT not in response.content.decode() and "m-and-a" not in response.content.decode()
        assert sent == 0
        assert not Proposal.objects.filter(tenant=globex.tenant).exists()
        assert not AuditEvent.objects.filter(tenant="globex", data__icontains="confidential").exists()

    def test_not_owned_and_missing_get_the_very_same_answer(self, acme, globex):
        # globex, on its own CRM, names a ticket that does not exist there
        own_connection("globex", base_url="https://globex-crm.test", token="globex-token")
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.GET,
                ticket_url(77, "https://globex-crm.test"),
                status=404,
                json={"error": "RecordNotFound"},
            )
            missing = propose(globex, "crm.update_ticket", {"ticket_id": 77, "priority": "low"})
        # acme, on the shared CRM, names a ticket that exists there but that it did not create
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add(responses.GET, ticket_url(77), json=crm_ticket(77))
            not_owned = propose(acme, "crm.update_ticket", {"ticket_id": 77, "priority": "low"})
            sent = len(rsps.calls)

        assert missing.status_code == not_owned.status_code == 400
        assert missing.json() == not_owned.json()
        assert sent == 0

    def test_the_creator_may_update_its_own_ticket_on_the_shared_crm(self, acme, globex):
        create_through_the_gateway(acme, 77)

        with responses.RequestsMock() as rsps:
            rsps.add(responses.GET, ticket_url(77), json=crm_ticket(77))
            response = propose(acme, "crm.update_ticket", {"ticket_id": 77, "priority": "low"})

        assert response.status_code == 201, response.content
        assert response.json()["preview"]["changes"] == [
            {"field": "priority", "before": "high", "after": "low"}
        ]
        assert list(CreatedRecord.objects.values_list("tenant", "system", "base_url", "external_id")) == [
            ("acme", "crm", "https://shared-crm.test", "77")
        ]

    def test_a_ticket_no_longer_owned_at_commit_fails_the_proposal_without_a_request(self, acme, globex):
        # given acme, on its own CRM, proposed an update of ticket 5 (not created by the gateway)
        own_connection("acme", base_url="https://acme-crm.test", token="acme-token")
        with responses.RequestsMock() as rsps:
            rsps.add(responses.GET, ticket_url(5, "https://acme-crm.test"), json=crm_ticket(5))
            response = propose(acme, "crm.update_ticket", {"ticket_id": 5, "priority": "low"})
        assert response.status_code == 201, response.content
        proposal = Proposal.objects.get(pk=response.json()["id"])
        # and then globex got a connection to the same CRM: acme's is shared now
        own_connection("globex", base_url="https://acme-crm.test", token="globex-token")

        # when the approved update is committed
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add(responses.GET, ticket_url(5, "https://acme-crm.test"), json=crm_ticket(5))
            services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=API)
            services.proposal_commit(proposal_id=proposal.pk)
            sent = len(rsps.calls)

        # then it fails as "ticket not found" and nothing reached the CRM
        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED
        assert "Ticket not found" in proposal.status_reason
        assert sent == 0

    def test_receipts_of_created_tickets_are_backfilled_as_created_records(self, acme):
        import importlib

        from django.apps import apps

        proposal = create_through_the_gateway(acme, 91)
        CreatedRecord.objects.all().delete()
        assert Receipt.objects.get(proposal=proposal).external_id == "91"

        migration = importlib.import_module("approvals.migrations.0008_inbound_global_created_records")
        migration.backfill_created_records(apps, None)

        assert list(CreatedRecord.objects.values_list("tenant", "base_url", "external_id")) == [
            ("acme", "https://shared-crm.test", "91")
        ]


@pytest.mark.django_db
class TestOwnConnections:
    def test_each_tenant_reaches_only_its_own_crm_with_its_own_token(self, acme, globex):
        own_connection("acme", base_url="https://acme-crm.test", token="acme-token")
        own_connection("globex", base_url="https://globex-crm.test", token="globex-token")

        create_through_the_gateway(acme, 1, "https://acme-crm.test")
        create_through_the_gateway(globex, 2, "https://globex-crm.test")
        with responses.RequestsMock() as rsps:
            rsps.add(responses.GET, ticket_url(2, "https://globex-crm.test"), json=crm_ticket(2))
            assert (
                propose(globex, "crm.update_ticket", {"ticket_id": 2, "status": "solved"}).status_code == 201
            )
            assert rsps.calls[0].request.headers["Authorization"] == "Bearer globex-token"

    def test_one_tenants_broken_crm_does_not_open_another_tenants_breaker(self, acme, globex):
        own_connection("acme", base_url="https://acme-crm.test", token="acme-token")
        args = {"subject": "S", "description": "D", "priority": "normal"}

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, "https://acme-crm.test/api/v2/tickets.json", status=503)
            with pytest.raises(TransientFailure):
                registry.execute("crm.create_ticket", args, idempotency_key="a-1", tenant="acme")
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST, f"{settings.CRM_BASE_URL}/api/v2/tickets.json", status=201, json=crm_ticket(3)
            )
            outcome = registry.execute("crm.create_ticket", args, idempotency_key="g-1", tenant="globex")

        assert breaker.state("crm:acme") == "open"
        assert breaker.state("crm") == "closed"
        assert outcome.external_id == "3"

    def test_a_commit_waits_for_its_own_connections_breaker(self, acme, globex, settings):
        """The commit whose retries ran out as acme's breaker opened (its 5th failure, its last attempt) waits
        for acme's breaker, not for the default's, which acme's outage does not open."""
        assert settings.ACME_RETRY_MAX == settings.ACME_BREAKER_FAILURES == 5
        own_connection("acme", base_url="https://acme-crm.test", token="acme-token")
        response = propose(
            acme, "crm.create_ticket", {"subject": "S", "description": "D", "priority": "high"}
        )
        proposal = Proposal.objects.get(pk=response.json()["id"])

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, "https://acme-crm.test/api/v2/tickets.json", status=503)
            services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=API)
            services.proposal_commit(proposal_id=proposal.pk)

        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED, proposal.status_reason
        assert proposal.status_reason.startswith("Waiting")
        assert (breaker.state("crm:acme"), breaker.state("crm")) == ("open", "closed")
