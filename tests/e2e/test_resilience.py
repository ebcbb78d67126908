"""A downstream outage through the whole product: the breaker opens, commits wait (not fail) while it is
open, and complete once it closes, with one ticket each."""

from __future__ import annotations

import time
import uuid

from tests.e2e.stack import running_stack

ARGS = {"subject": "Disk almost full on db-2", "description": "93% used.", "priority": "high"}


def submit(stack, party, subject):
    response = stack.api(
        "POST",
        "/proposals/",
        party["agent"],
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"tool": "crm.create_ticket", "args": {**ARGS, "subject": subject}},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_open_breaker_defers_commits_until_it_closes():
    with running_stack(ACME_BREAKER_COOLDOWN="4", ACME_RETRY_MAX="5", ACME_RETRY_BASE="0.01") as stack:
        party = stack.party()
        first, second = submit(stack, party, "first"), submit(stack, party, "second")
        stack.sandbox(
            "POST", "/_sandbox/faults", json={"target": "crm", "mode": "status", "status": 503, "count": 5}
        )

        # Five 503s: the first commit spends its retries, which opens the breaker; it waits (not a dead
        # letter), and says why.
        stack.api("POST", f"/proposals/{first}/approve/", party["reviewer"], json={})
        body = wait_for_reason(stack, party, first, "circuit breaker")
        assert body["status"] == "approved", body
        requests_so_far = len(stack.sandbox("GET", "/_sandbox/requests").json()["requests"])
        assert requests_so_far == 5

        # While open, the second commit waits too; no request reaches the CRM.
        stack.api("POST", f"/proposals/{second}/approve/", party["reviewer"], json={})
        body = wait_for_reason(stack, party, second, "circuit breaker")
        assert body["status"] == "approved"
        assert len(stack.sandbox("GET", "/_sandbox/requests").json()["requests"]) == requests_so_far

        # After the cooldown one probe goes out, succeeds, closes the breaker: both commit, one ticket each.
        for pid in (first, second):
            done = stack.wait_status(pid, party["agent"], {"committed", "failed"}, timeout=60)
            assert done["status"] == "committed", done
        assert sorted(t["subject"] for t in stack.tickets()) == ["first", "second"]


def wait_for_reason(stack, party, pid, text, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        body = stack.api("GET", f"/proposals/{pid}/", party["agent"]).json()
        if text in body["status_reason"]:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
