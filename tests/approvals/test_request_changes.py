"""Request changes (issue 19 part 4, contract 8): a reviewer asks the agent for a corrected call; the proposal
becomes ``changes_requested`` (final) and the reason reaches the agent over the API, the webhook and MCP."""

from __future__ import annotations

import pytest
import responses

from approvals import errors, forms, lifecycle
from approvals.models import Decision, Proposal, Status, WebhookDelivery
from audit.models import AuditEvent
from tests.approvals.test_api import TICKET
from tests.approvals.test_api import submit as api_submit
from tests.approvals.test_mcp import call
from tests.approvals.test_views import reviewer_client, submit, url

REASON = "Use priority normal, not high: nothing is on fire."


@pytest.mark.django_db
class TestApi:
    def test_request_changes_decides_once_tells_the_agent_and_never_calls_the_crm(
        self, acme, django_capture_on_commit_callbacks
    ):
        pid = api_submit(acme).json()["id"]

        with responses.RequestsMock() as rsps, django_capture_on_commit_callbacks(execute=True):
            missing = acme.reviewer_client.post(
                f"/api/v1/proposals/{pid}/request_changes/", {}, format="json"
            )
            asked = acme.reviewer_client.post(
                f"/api/v1/proposals/{pid}/request_changes/", {"reason": REASON}, format="json"
            )
            again = acme.reviewer_client.post(
                f"/api/v1/proposals/{pid}/request_changes/", {"reason": REASON}, format="json"
            )
            assert len(rsps.calls) == 0

        assert missing.status_code == 400
        assert asked.status_code == 200, asked.content
        body = asked.json()
        assert body["status"] == "changes_requested"
        assert body["decision"]["verdict"] == "changes_requested"
        assert body["decision"]["reason"] == REASON
        assert REASON in body["status_reason"] and "new Idempotency-Key" in body["status_reason"]
        assert body["links"]["request_changes"].endswith(f"/api/v1/proposals/{pid}/request_changes/")
        assert again.status_code == 409
        # the agent reads the same
        seen = acme.agent_client.get(f"/api/v1/proposals/{pid}/").json()
        assert seen["status"] == "changes_requested" and seen["decision"]["reason"] == REASON
        event = AuditEvent.objects.get(action="proposal.changes_requested")
        assert event.data["reason"] == REASON and event.actor_id == str(acme.reviewer.pk)

    def test_the_requester_and_an_agent_cannot_request_changes(self, acme):
        pid = api_submit(acme, on_behalf_of=acme.reviewer.username).json()["id"]

        own = acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/request_changes/", {"reason": REASON}, format="json"
        )
        agent = acme.agent_client.post(
            f"/api/v1/proposals/{pid}/request_changes/", {"reason": REASON}, format="json"
        )

        assert own.status_code == 403 and own.json()["error"] == "self_approval_forbidden"
        assert agent.status_code in (403, 404)
        assert Proposal.objects.get(pk=pid).status == Status.PENDING
        assert not Decision.objects.exists()

    def test_the_decided_webhook_carries_the_reason(self, acme, django_capture_on_commit_callbacks):
        acme.agent.webhook_url = "https://agent.example/hook"
        acme.agent.save()
        pid = api_submit(acme).json()["id"]

        acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/request_changes/", {"reason": REASON}, format="json"
        )

        delivery = WebhookDelivery.objects.get(event="proposal.decided")
        proposal = delivery.payload["proposal"]
        assert proposal["status"] == "changes_requested"
        assert proposal["decision"]["verdict"] == "changes_requested"
        assert proposal["decision"]["reason"] == REASON
        assert "Submit a corrected call" in proposal["status_reason"]


@pytest.mark.django_db
class TestWebAndMcp:
    def test_the_review_page_offers_request_changes_with_a_required_reason(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)

        page = client.get(url("", proposal)).content.decode()
        assert 'id="changes-form"' in page and "Request changes" in page
        refused = client.post(url("request_changes", proposal), {"reason": "  "})
        assert refused.status_code == 400 and forms.CHANGES_REASON_REQUIRED in refused.content.decode()
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING

        response = client.post(url("request_changes", proposal), {"reason": REASON}, follow=True)

        assert Proposal.objects.get(pk=proposal.pk).status == Status.CHANGES_REQUESTED
        decision = Decision.objects.get(proposal=proposal)
        assert (decision.verdict, decision.reason, decision.channel) == ("changes_requested", REASON, "web")
        assert "Changes requested." in response.content.decode()

    def test_mcp_get_proposal_tells_the_model_to_resubmit_a_corrected_call(self, acme):
        pid = call(acme, "crm_create_ticket", TICKET)["structuredContent"]["proposal_id"]
        acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/request_changes/", {"reason": REASON}, format="json"
        )

        answer = call(acme, "get_proposal", {"proposal_id": pid})

        assert answer["structuredContent"]["status"] == "changes_requested"
        assert answer["structuredContent"]["decision"] == "changes_requested"
        assert answer["structuredContent"]["reason"] == REASON
        text = answer["content"][0]["text"]
        assert REASON in text and "Call the same tool again with the args corrected" in text

    def test_the_service_needs_a_reason(self, acme):
        from approvals import services
        from audit.services import Where

        proposal = submit(acme)
        with pytest.raises(errors.DomainError) as refused:
            services.proposal_request_changes(
                proposal=proposal, reviewer=acme.reviewer, reason=" ", where=Where(channel="api")
            )
        assert str(refused.value.detail) == errors.CHANGES_REASON_REQUIRED
        assert lifecycle.TRANSITIONS["request_changes"].target == Status.CHANGES_REQUESTED
