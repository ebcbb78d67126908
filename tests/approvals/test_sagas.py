"""workflow.customer_update_digest: approved once, run step by step, resumed after a crash, compensated on failure."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from approvals import services
from approvals.models import Proposal, Receipt, SagaStep, Status
from audit.services import Where

API = Where(channel="api")
CRM = settings.CRM_BASE_URL
SLACK = settings.SLACK_API_URL
ARGS = {
    "customer_email": "Dana@Example.com",
    "channel": "#accounts",
    "summary": "Renewal signed for 2 years.",
}


def approved(party):
    # The preview reads the customer (to show the exact Slack text), so the submission needs the CRM too.
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        customer_found(rsps)
        proposal = services.proposal_submit(
            agent=party.agent, tool="workflow.customer_update_digest", args=ARGS, where=API
        ).proposal
    return services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)


def customer_found(rsps):
    rsps.add(
        responses.GET,
        f"{CRM}/api/v2/users/search.json",
        json={"users": [{"id": 501, "name": "Dana Scully", "email": "dana@example.com"}], "count": 1},
    )


def slack_posted(rsps):
    rsps.add(
        responses.POST,
        f"{SLACK}/chat.postMessage",
        json={"ok": True, "channel": "C0ACCOUNTS", "ts": "1700.0001"},
    )


def ticket_created(rsps, status=201):
    body: dict[str, Any] = (
        {
            "ticket": {
                "id": 900,
                "subject": "Digest sent",
                "priority": "low",
                "status": "new",
                "updated_at": "2026-11-23T10:00:00Z",
            }
        }
        if status == 201
        else {"error": "RecordInvalid"}
    )
    rsps.add(responses.POST, f"{CRM}/api/v2/tickets.json", status=status, json=body)


@pytest.mark.django_db
class TestDigest:
    def test_preview_lists_every_step_and_it_is_a_write_needing_approval(self, acme):
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            customer_found(rsps)
            response = acme.agent_client.post(
                "/api/v1/proposals/", {"tool": "workflow.customer_update_digest", "args": ARGS}, format="json"
            )

        assert response.status_code == 201
        assert [c["field"] for c in response.json()["preview"]["changes"]] == [
            "step 1: read customer",
            "step 2: post to Slack",
            "step 3: record in CRM",
        ]

    def test_all_steps_run_in_order_and_leave_a_receipt(self, acme):
        proposal = approved(acme)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            customer_found(rsps)
            slack_posted(rsps)
            ticket_created(rsps)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"
            posted = json.loads(cast(bytes, rsps.calls[1].request.body))
            assert posted == {
                "channel": "#accounts",
                "text": "Customer update: Dana Scully (CRM #501): Renewal signed for 2 years.",
                # the step's post is tagged with its key, looked for before a resend
                "metadata": {
                    "event_type": "acme_proposal",
                    "event_payload": {"key": f"acme-proposal-{proposal.pk}-step-1"},
                },
            }

        assert list(SagaStep.objects.values_list("name", "state")) == [
            ("lookup_customer", "done"),
            ("post_digest", "done"),
            ("record_in_crm", "done"),
        ]
        receipt = Receipt.objects.get(proposal=proposal)
        assert receipt.response_summary["steps"][2]["result"] == {"ticket_id": 900}

    def test_a_crash_resumes_at_the_next_step(self, acme):
        proposal = approved(acme)
        SagaStep.objects.create(
            proposal=proposal,
            index=0,
            name="lookup_customer",
            state="done",
            result={"customer_id": 501, "name": "Dana Scully"},
        )
        SagaStep.objects.create(
            proposal=proposal,
            index=1,
            name="post_digest",
            state="done",
            result={"channel": "C0ACCOUNTS", "ts": "1700.0001"},
        )
        # The worker died after step 2: its lease ran out.
        Proposal.objects.filter(pk=proposal.pk).update(
            status=Status.COMMITTING, lease_until=timezone.now() - timedelta(seconds=1)
        )

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            ticket_created(rsps)  # only step 3 goes out: no second Slack post, no second lookup
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"
            assert rsps.calls[0].request.headers["Idempotency-Key"] == f"acme-proposal-{proposal.pk}-step-2"

    def test_a_later_failure_undoes_the_earlier_writes(self, acme):
        proposal = approved(acme)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            customer_found(rsps)
            slack_posted(rsps)
            ticket_created(rsps, status=422)
            rsps.add(responses.POST, f"{SLACK}/chat.delete", json={"ok": True})
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"
            assert json.loads(cast(bytes, rsps.calls[-1].request.body)) == {
                "channel": "C0ACCOUNTS",
                "ts": "1700.0001",
            }

        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED
        assert "Step 'record_in_crm' failed" in proposal.status_reason
        assert "Undone: post_digest" in proposal.status_reason
        steps = acme.agent_client.get(f"/api/v1/proposals/{proposal.pk}/").json()["steps"]
        assert [(s["name"], s["state"]) for s in steps] == [
            ("lookup_customer", "done"),
            ("post_digest", "compensated"),
        ]

    def test_a_customer_gone_by_the_commit_fails_before_any_write(self, acme):
        proposal = approved(acme)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add(responses.GET, f"{CRM}/api/v2/users/search.json", json={"users": [], "count": 0})
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"

        proposal.refresh_from_db()
        assert "Undone: nothing to undo" in proposal.status_reason
        assert not SagaStep.objects.exists()
