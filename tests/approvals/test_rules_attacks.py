"""Approval rules (issue 22) under attack: one person cannot meet a quorum alone, a stale or blind approval
cannot complete a quorum on args nobody it counts saw, a non-member cannot decide through any door, and the
bulk endpoint answers hostile bodies in the error shape (never 500) without revealing other tenants."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals import errors, services
from approvals.models import Approval, Decision, Membership, Proposal, ReviewerGroup, Status, ToolPolicy
from audit.services import Where
from tests.approvals.test_api import TICKET, submit
from tests.approvals.test_api_rules import approve, needs, second_reviewer

pytestmark = pytest.mark.django_db
API = Where(channel="api")


def bulk(client: Any, **body: Any) -> Any:
    return client.post("/api/v1/proposals/bulk/", body, format="json")


def fresh(pid: str) -> Proposal:
    return Proposal.objects.get(pk=pid)


def test_a_deactivated_reviewers_approval_stops_counting(acme):
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    first, _ = second_reviewer(acme, "first")
    services.proposal_approve(proposal=fresh(pid), reviewer=first, where=API)
    first.is_active = False
    first.save(update_fields=["is_active"])

    after = services.proposal_approve(proposal=fresh(pid), reviewer=acme.reviewer, where=API)

    assert after.status == Status.PENDING
    assert not Decision.objects.filter(proposal_id=pid).exists()


def test_a_reviewer_taken_out_of_the_group_stops_counting(acme):
    group = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    first, _ = second_reviewer(acme, "first")
    group.members.add(first, acme.reviewer)
    pid = submit(acme).json()["id"]
    needs(pid, 2, group)
    services.proposal_approve(proposal=fresh(pid), reviewer=first, where=API)
    group.members.remove(first)

    after = services.proposal_approve(proposal=fresh(pid), reviewer=acme.reviewer, where=API)

    assert after.status == Status.PENDING


def test_a_reviewer_demoted_in_the_tenant_stops_counting(acme):
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    first, _ = second_reviewer(acme, "first")
    services.proposal_approve(proposal=fresh(pid), reviewer=first, where=API)
    Membership.objects.filter(user=first).update(role="requester")

    after = services.proposal_approve(proposal=fresh(pid), reviewer=acme.reviewer, where=API)

    assert after.status == Status.PENDING


def test_two_tokens_of_one_reviewer_count_once(acme):
    from approvals.accounts import user_token_create

    pid = submit(acme).json()["id"]
    needs(pid, 2)
    other_client = acme.client(user_token_create(user=acme.reviewer))
    assert approve(acme.reviewer_client, pid).status_code == 200
    again = approve(other_client, pid)
    assert again.status_code == 409 and again.json()["error"] == "already_approved"
    assert fresh(pid).status == Status.PENDING


def test_the_same_reviewer_cannot_complete_a_quorum_by_editing_back_and_forth(acme):
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    assert approve(acme.reviewer_client, pid).status_code == 200
    edited = approve(acme.reviewer_client, pid, args=dict(TICKET, priority="low"))
    assert edited.status_code == 200, edited.content
    back = approve(acme.reviewer_client, pid, args=TICKET)
    assert back.status_code == 409
    assert fresh(pid).status == Status.PENDING
    assert not Decision.objects.filter(proposal_id=pid).exists()


def test_an_approval_bound_to_the_args_it_saw_cannot_complete_a_quorum_on_args_edited_since(acme):
    """Reviewer A has the proposal on screen (args hash H1); reviewer B edits it and approves (1 of 2 on H2);
    A's approval, sent for H1, must not become the second approval of H2, args A never saw."""
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    _, editor = second_reviewer(acme, "editor")
    seen = fresh(pid).args_hash
    edited = approve(editor, pid, args=dict(TICKET, priority="low"))
    assert edited.status_code == 200, edited.content

    stale = approve(acme.reviewer_client, pid, args_hash=seen)

    assert stale.status_code == 409, stale.content
    assert stale.json()["error"] == "args_changed"
    assert fresh(pid).status == Status.PENDING
    assert not Decision.objects.filter(proposal_id=pid).exists()
    assert Approval.objects.filter(proposal_id=pid).count() == 1  # the editor's alone

    current = approve(acme.reviewer_client, pid, args_hash=fresh(pid).args_hash)
    assert current.status_code == 202, current.content


def test_the_service_checks_the_seen_args_hash_under_the_lock(acme):
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    stale = fresh(pid)  # read before the edit, as a page or a Slack message shows it
    editor, _ = second_reviewer(acme, "editor")
    services.proposal_approve(
        proposal=fresh(pid), reviewer=editor, where=API, args=dict(TICKET, priority="low")
    )

    with pytest.raises(errors.ArgsChanged):
        services.proposal_approve(
            proposal=stale, reviewer=acme.reviewer, where=API, args_hash=stale.args_hash
        )
    assert fresh(pid).status == Status.PENDING
    assert Approval.objects.filter(proposal_id=pid, reviewer=acme.reviewer).count() == 0


def test_bulk_answers_hostile_bodies_in_the_error_shape(acme):
    pid = submit(acme).json()["id"]
    for body in (
        {"ids": [pid], "verdict": "approve", "args_hashes": {pid: "x" * 65}},
        {"ids": [pid], "verdict": "approve", "args_hashes": {pid: 5}},
        {"ids": [pid], "verdict": "approve", "args_hashes": [pid]},
        {"ids": [pid], "verdict": "approve", "args_hashes": {"not-a-uuid": "a"}},
        {"ids": [pid], "verdict": "approve", "reason": "r" * 5000},
        {"ids": [pid], "verdict": "approve", "reason": 7},
        {"ids": [None], "verdict": "approve"},
        {"ids": pid, "verdict": "approve"},
        {"ids": [], "verdict": "approve"},
        {"ids": [pid], "verdict": "APPROVE"},
        {"ids": [pid] * 1001, "verdict": "approve"},
    ):
        response = bulk(acme.reviewer_client, **body)
        assert response.status_code == 400, (body, response.status_code, response.content[:300])
        assert response.json()["error"] == "invalid_args", body
    assert fresh(pid).status == Status.PENDING


def test_bulk_duplicate_ids_decide_once(acme):
    pid = submit(acme).json()["id"]
    needs(pid, 2)
    response = bulk(acme.reviewer_client, ids=[pid, pid.upper(), pid], verdict="approve")
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 1
    assert Approval.objects.filter(proposal_id=pid).count() == 1


def test_bulk_other_tenants_ids_are_not_found_like_unknown_ones(acme, globex):
    theirs = submit(globex).json()["id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    response = bulk(acme.reviewer_client, ids=[theirs, unknown], verdict="reject", reason="no")
    results = response.json()["results"]
    assert [{k: v for k, v in r.items() if k != "id"} for r in results] == [
        {"result": "skipped", "status": None, "error": "not_found", "detail": results[1]["detail"]}
    ] * 2
    assert fresh(theirs).status == Status.PENDING


def test_bulk_by_a_non_member_decides_nothing(acme):
    group = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    pid = submit(acme).json()["id"]
    needs(pid, 1, group)
    for verdict, reason in (("approve", ""), ("reject", "no")):
        results = bulk(acme.reviewer_client, ids=[pid], verdict=verdict, reason=reason).json()["results"]
        assert results[0]["result"] == "skipped" and results[0]["error"] == "not_in_review_group"
    assert fresh(pid).status == Status.PENDING and not Approval.objects.exists()


def test_api_reject_and_request_changes_by_a_non_member_are_403(acme):
    group = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    pid = submit(acme).json()["id"]
    needs(pid, 1, group)
    for action in ("reject", "request_changes"):
        response = acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/{action}/", {"reason": "x"}, format="json"
        )
        assert response.status_code == 403, (action, response.content)
    assert fresh(pid).status == Status.PENDING


def test_reassign_to_another_tenants_group_or_person_is_not_found(acme, globex):
    theirs = ReviewerGroup.objects.create(tenant=globex.tenant, name="secret-finance")
    pid = submit(acme).json()["id"]
    with pytest.raises(errors.DomainError) as raised:
        services.proposal_reassign(proposal=fresh(pid), by=acme.reviewer, to_group=theirs, where=API)
    assert raised.value.status == 404 and "secret-finance" not in str(raised.value.detail)
    with pytest.raises(errors.DomainError) as raised:
        services.proposal_reassign(proposal=fresh(pid), by=acme.reviewer, to_user=globex.reviewer, where=API)
    assert raised.value.status == 404
    assert fresh(pid).review_group_id is None and fresh(pid).assignee_id is None


@pytest.mark.parametrize("n", ["0", "11", "-1", "99999999999", "two"])
def test_set_policy_refuses_invalid_quorums(acme, n):
    with pytest.raises((CommandError, SystemExit)):
        call_command(
            "set_policy", "--tenant", "acme", "--name", "r", "--tool", "*", "--approvals-required", n
        )
    assert not ToolPolicy.objects.exists()


def test_set_policy_refuses_another_tenants_group(acme, globex):
    ReviewerGroup.objects.create(tenant=globex.tenant, name="gfin")
    with pytest.raises(CommandError):
        call_command("set_policy", "--tenant", "acme", "--name", "r", "--tool", "*", "--group", "gfin")
    assert not ToolPolicy.objects.exists()


def test_a_rule_with_another_tenants_group_is_invalid(acme, globex):
    from django.core.exceptions import ValidationError

    theirs = ReviewerGroup.objects.create(tenant=globex.tenant, name="gfin")
    rule = ToolPolicy(tenant=acme.tenant, name="r", tool="*", review_group=theirs)
    with pytest.raises(ValidationError):
        rule.full_clean()


def test_a_rejection_with_an_invisible_reason_is_refused_in_bulk_as_alone(acme):
    pid = submit(acme).json()["id"]
    alone = acme.reviewer_client.post(
        f"/api/v1/proposals/{pid}/reject/", {"reason": "\u200b\u2060"}, format="json"
    )
    many = bulk(acme.reviewer_client, ids=[pid], verdict="reject", reason="\u200b\u2060")
    assert (alone.status_code, many.status_code) == (400, 400), (alone.content, many.content)
    assert fresh(pid).status == Status.PENDING


def test_bulk_costs_a_constant_number_of_queries_per_id(acme):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(n: int) -> int:
        ids = [submit(acme, dict(TICKET, subject=f"q{n}-{i}")).json()["id"] for i in range(n)]
        Proposal.objects.filter(pk__in=ids).update(approvals_required=2)
        with CaptureQueriesContext(connection) as ctx:
            response = bulk(acme.reviewer_client, ids=ids, verdict="approve")
        assert response.status_code == 200
        assert all(r["result"] == "decided" for r in response.json()["results"])
        return len(ctx.captured_queries)

    one, five, ten = cost(1), cost(5), cost(10)
    # Linear: each id costs the same handful of queries (its lock, the checks, the approval, the audit
    # event), within one for what the first id reads once (the reviewer's scope), whatever the batch size.
    per_id = (ten - five) / 5
    assert abs(per_id - (five - one) / 4) <= 1, (one, five, ten)
    assert per_id <= 20, (one, five, ten)


@pytest.mark.parametrize("who", ["deactivated", "requester"])
def test_reassign_to_someone_who_cannot_decide_is_refused(acme, who):
    """Handing a proposal to a person who may not decide on it (a deactivated reviewer, the reviewer it was
    made for) would take it out of every other reviewer's "for you" list while nobody can act on it."""
    target, _ = second_reviewer(acme, "target")
    pid = submit(acme).json()["id"]
    if who == "deactivated":
        target.is_active = False
        target.save(update_fields=["is_active"])
    else:
        Proposal.objects.filter(pk=pid).update(on_behalf_of=target)

    with pytest.raises(errors.DomainError):
        services.proposal_reassign(proposal=fresh(pid), by=acme.reviewer, to_user=target, where=API)

    assert fresh(pid).assignee_id is None


# --- the other doors: the review page and Slack -------------------------------------------------------


def test_the_review_page_binds_its_approval_to_the_args_it_showed(acme):
    """The web's Approve sends the args hash of the version on screen: after another reviewer's edit it is
    refused (409 page, nothing recorded) instead of approving args this reviewer never saw."""
    from tests.approvals.test_views import reviewer_client, url

    pid = submit(acme).json()["id"]
    needs(pid, 2)
    web = reviewer_client(acme)
    page = web.get(f"/proposals/{pid}/")
    seen = fresh(pid).args_hash
    assert f'name="args_hash" value="{seen}"' in page.content.decode()
    _, editor = second_reviewer(acme, "editor")
    assert approve(editor, pid, args=dict(TICKET, priority="low")).status_code == 200

    stale = web.post(url("approve", fresh(pid)), {"comment": "", "args_hash": seen})

    assert stale.status_code == 409
    assert Approval.objects.filter(proposal_id=pid, reviewer=acme.reviewer).count() == 0
    assert fresh(pid).status == Status.PENDING
    current = web.post(url("approve", fresh(pid)), {"comment": "", "args_hash": fresh(pid).args_hash})
    assert current.status_code == 302
    assert Decision.objects.filter(proposal_id=pid, verdict="approved").count() == 1


@pytest.mark.parametrize("action", ["reject", "request_changes"])
def test_an_invisible_reason_is_no_reason_on_the_web_or_at_the_service(acme, action):
    from tests.approvals.test_views import reviewer_client

    pid = submit(acme).json()["id"]
    path = "reject" if action == "reject" else "request_changes"
    response = reviewer_client(acme).post(f"/proposals/{pid}/{path}/", {"reason": "\u200b \u2060\u2800"})
    assert response.status_code == 400
    decide = services.proposal_reject if action == "reject" else services.proposal_request_changes
    with pytest.raises(errors.DomainError):
        decide(proposal=fresh(pid), reviewer=acme.reviewer, reason="\u200b\u2060", where=API)
    assert fresh(pid).status == Status.PENDING
    assert not Decision.objects.filter(proposal_id=pid).exists()
