"""Approval rules through the REST API (issue 22, contract 9): the proposal JSON's ``approvals`` object, approve
answering 200 while the quorum is short and 202 when it completes it, 409 ``already_approved``, 403
``not_in_review_group``, and a list that reads the approvals of its page without a query per proposal."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.accounts import person_create, user_token_create
from approvals.models import Approval, Decision, Proposal, ReviewerGroup, Role, Status
from tests.approvals.test_api import TICKET, submit

pytestmark = pytest.mark.django_db


def second_reviewer(party: Any, name: str = "second") -> tuple[Any, Any]:
    user = person_create(tenant=party.tenant, username=f"{party.tenant.slug}-{name}", role=Role.REVIEWER)
    return user, party.client(user_token_create(user=user))


def needs(pid: str, n: int, group: ReviewerGroup | None = None) -> None:
    """Give a proposal the rule "n approvals" (what a ToolPolicy snapshots at submit)."""
    Proposal.objects.filter(pk=pid).update(approvals_required=n, review_group=group)


def approve(client: Any, pid: str, **body: Any) -> Any:
    return client.post(f"/api/v1/proposals/{pid}/approve/", body, format="json")


def test_the_proposal_json_has_its_approvals_and_args_hash(acme):
    body = submit(acme).json()

    assert body["approvals"] == {"required": 1, "given": [], "missing": 1}
    assert body["args_hash"] == Proposal.objects.get(pk=body["id"]).args_hash


def test_approve_answers_200_with_what_is_missing_then_202_when_the_quorum_is_met(acme):
    second, second_client = second_reviewer(acme)
    pid = submit(acme).json()["id"]
    needs(pid, 2)

    first = approve(acme.reviewer_client, pid, comment="looks right")

    assert first.status_code == 200, first.content
    body = first.json()
    assert body["status"] == "pending"
    assert body["decision"] is None
    assert body["approvals"]["required"] == 2
    assert body["approvals"]["missing"] == 1
    [given] = body["approvals"]["given"]
    assert given["by"] == acme.reviewer.username
    assert given["comment"] == "looks right"
    assert given["args_hash"] == body["args_hash"]
    assert Decision.objects.filter(proposal_id=pid).count() == 0

    last = approve(second_client, pid)

    assert last.status_code == 202, last.content
    body = last.json()
    assert body["status"] == "approved"
    assert body["approvals"]["missing"] == 0
    assert [g["by"] for g in body["approvals"]["given"]] == [acme.reviewer.username, second.username]
    assert Decision.objects.filter(proposal_id=pid).count() == 1


def test_the_same_reviewer_twice_is_409_already_approved_and_counts_once(acme):
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    assert approve(acme.reviewer_client, pid).status_code == 200

    again = approve(acme.reviewer_client, pid)

    assert again.status_code == 409
    assert again.json()["error"] == "already_approved"
    assert Approval.objects.filter(proposal_id=pid).count() == 1
    assert Proposal.objects.get(pk=pid).status == Status.PENDING


def test_a_reviewer_outside_the_group_is_403_not_in_review_group(acme):
    second, second_client = second_reviewer(acme)
    finance = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    finance.members.add(second)
    pid = submit(acme).json()["id"]
    needs(pid, 1, finance)

    refused = approve(acme.reviewer_client, pid)

    assert refused.status_code == 403
    assert refused.json()["error"] == "not_in_review_group"
    assert "finance" in refused.json()["detail"]
    assert not Approval.objects.filter(proposal_id=pid).exists()
    assert approve(second_client, pid).status_code == 202


def test_the_list_reads_approvals_without_a_query_per_proposal(acme):
    _, second_client = second_reviewer(acme)

    def grow(n: int, start: int) -> None:
        for i in range(start, start + n):
            pid = submit(acme, dict(TICKET, subject=f"n{i}")).json()["id"]
            needs(pid, 3)
            assert approve(acme.reviewer_client, pid).status_code == 200
            assert approve(second_client, pid).status_code == 200

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = acme.reviewer_client.get("/api/v1/proposals/?page_size=50")
        assert response.status_code == 200
        assert all(len(p["approvals"]["given"]) == 2 for p in response.json()["results"])
        return len(ctx.captured_queries)

    grow(2, 0)
    count()  # the first call also records the token's last use (once a minute)
    small = count()
    grow(8, 100)

    assert count() == small


def test_the_list_counts_what_one_proposal_counts(acme):
    """The page's approvals read at once count as each proposal's own do: once per person (whatever groups
    they are in), only in the group it is routed to, on its current args."""
    second, second_client = second_reviewer(acme)
    finance = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    ops = ReviewerGroup.objects.create(tenant=acme.tenant, name="ops")
    finance.members.add(second, acme.reviewer)
    ops.members.add(second)
    routed, plain, left = (submit(acme, dict(TICKET, subject=f"c{i}")).json()["id"] for i in range(3))
    needs(routed, 3, finance)
    needs(plain, 3)
    needs(left, 3, finance)
    for pid in (routed, plain, left):
        assert approve(second_client, pid).status_code == 200
        assert approve(acme.reviewer_client, pid).status_code == 200
    finance.members.remove(acme.reviewer)  # out of the group: their approvals of routed ones stop counting

    listed = {
        p["id"]: p["approvals"] for p in acme.reviewer_client.get("/api/v1/proposals/").json()["results"]
    }

    for pid in (routed, plain, left):
        one = second_client.get(f"/api/v1/proposals/{pid}/").json()["approvals"]
        assert listed[pid] == one
    assert [g["by"] for g in listed[plain]["given"]] == [second.username, acme.reviewer.username]
    assert [g["by"] for g in listed[left]["given"]] == [second.username]
    assert listed[left]["missing"] == 2
