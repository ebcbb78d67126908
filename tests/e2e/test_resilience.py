"""A downstream outage through the whole product: the breaker opens, commits wait (not fail) while it is
open, and complete once it closes, with one ticket each."""

from __future__ import annotations

import time
import uuid

from tests.e2e.stack import running_stack

ARGS = {"subject": "Disk almost full on db-2", "description": "93% used.", "priority": "high"}


def submit(stack, party, subject):
    response = stack.api("POST", "/proposals/", party["agent"], headers={"Idempotency-Key": uuid.uuid4().hex},
                         json={"tool": "crm.create_ticket", "args": {**ARGS, "subject": subject}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_open_breaker_defers_commits_until_it_closes():
    with running_stack(ACME_BREAKER_COOLDOWN="4", ACME_RETRY_MAX="5", ACME_RETRY_BASE="0.01") as stack:
        party = stack.party()
        first, second = submit(stack, party, "first"), submit(stack, party, "second")
        stack.sandbox("POST", "/_sandbox/faults", json={"target": "crm", "mode": "status", "status": 503, "count": 5})

        # Five 503s: the first commit spends its retries and is dead-lettered; the breaker opens.
        stack.api("POST", f"/proposals/{first}/approve/", party["reviewer"], json={})
        failed = stack.wait_status(first, party["agent"], {"failed", "committed"})
        assert failed["status"] == "failed"
        requests_so_far = len(stack.sandbox("GET", "/_sandbox/requests").json()["requests"])

        # While open, the second commit waits and says why; no request reaches the CRM.
        stack.api("POST", f"/proposals/{second}/approve/", party["reviewer"], json={})
        deadline = time.monotonic() + 20
        while True:
            body = stack.api("GET", f"/proposals/{second}/", party["agent"]).json()
            if "circuit breaker" in body["status_reason"]:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert body["status"] == "approved"
        assert len(stack.sandbox("GET", "/_sandbox/requests").json()["requests"]) == requests_so_far

        # After the cooldown one probe goes out, succeeds, closes the breaker: one ticket.
        done = stack.wait_status(second, party["agent"], {"committed", "failed"}, timeout=60)
        assert done["status"] == "committed", done
        assert len(stack.tickets()) == 1

        # The dead-lettered one can be requeued (an admin action) and then commits once too.
        stack.manage("shell", "-c", (
            "from django.contrib.auth import get_user_model; from approvals import services;"
            "from approvals.models import Proposal; from audit.services import Where;"
            f"services.proposal_requeue(proposal=Proposal.objects.get(pk='{first}'),"
            f" admin=get_user_model().objects.get(username='{party['reviewer_username']}'), where=Where(channel='cli'))"
        ))
        assert stack.wait_status(first, party["agent"], {"committed"}, timeout=60)["status"] == "committed"
        assert len(stack.tickets()) == 2
