"""Bulk review (``POST /api/v1/proposals/bulk/``, ``services.proposals_bulk_decide``) and triage (snooze,
reassign): each proposal decided alone under every rule, bound to the args hash the reviewer saw; what another
tenant has is ``not_found``; snooze and reassign are audited and change neither status nor expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals import errors, services
from approvals.models import Approval, Decision, Proposal, ReviewerGroup, ReviewSnooze, Status
from audit.models import AuditEvent
from audit.services import Where
from tests.approvals.test_api import TICKET, submit
from tests.approvals.test_api_rules import approve, needs, second_reviewer

pytestmark = pytest.mark.django_db
WHERE = Where(channel="api")


def bulk(client: Any, **body: Any) -> Any:
    return client.post("/api/v1/proposals/bulk/", body, format="json")


def seen(client: Any) -> dict[str, str]:
    """What the reviewer has on screen: each pending proposal's args hash, from the list."""
    page = client.get("/api/v1/proposals/?status=pending&page_size=200").json()["results"]
    return {p["id"]: p["args_hash"] for p in page}


def test_bulk_approve_of_20_decides_each_once_and_skips_the_one_whose_args_changed(acme):
    _, second_client = second_reviewer(acme)
    ids = [submit(acme, dict(TICKET, subject=f"n{i}")).json()["id"] for i in range(20)]
    changed = ids[7]
    needs(changed, 2)  # so that the other reviewer's edit-then-approve leaves it pending, with new args
    hashes = seen(acme.reviewer_client)
    edited = approve(second_client, changed, args=dict(TICKET, subject="n7", priority="low"))
    assert edited.status_code == 200, edited.content
    assert edited.json()["args_hash"] != hashes[changed]

    response = bulk(acme.reviewer_client, ids=ids, verdict="approve", args_hashes=hashes)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids
    by_id = {r["id"]: r for r in results}
    assert by_id[changed]["result"] == "skipped"
    assert by_id[changed]["error"] == "args_changed"
    assert by_id[changed]["status"] == "pending"
    assert all(by_id[i] == {"id": i, "result": "decided", "status": "approved"} for i in ids if i != changed)
    assert Decision.objects.filter(proposal_id__in=ids).count() == 19
    assert not Decision.objects.filter(proposal_id=changed).exists()
    assert Approval.objects.filter(proposal_id=changed).count() == 1  # only the editor's
    assert AuditEvent.objects.filter(action="proposal.approved", subject_id__in=ids).count() == 19


def test_a_repeated_id_is_decided_once(acme):
    pid = submit(acme).json()["id"]

    response = bulk(acme.reviewer_client, ids=[pid, pid.upper(), pid], verdict="approve")

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": pid, "result": "decided", "status": "approved"}]
    assert Decision.objects.filter(proposal_id=pid).count() == 1


def test_every_rule_applies_to_each_id(acme):
    """Group routing, the quorum and the state are the services' own: one refusal skips that id only."""
    second, _ = second_reviewer(acme)
    finance = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    finance.members.add(second)
    routed, quorum, done, plain = (submit(acme, dict(TICKET, subject=f"r{i}")).json()["id"] for i in range(4))
    needs(routed, 1, finance)
    needs(quorum, 2)
    assert bulk(acme.reviewer_client, ids=[done], verdict="reject", reason="dup").status_code == 200

    results = bulk(acme.reviewer_client, ids=[routed, quorum, done, plain], verdict="approve").json()[
        "results"
    ]

    assert results[0]["error"] == "not_in_review_group" and results[0]["status"] == "pending"
    assert results[1] == {"id": quorum, "result": "decided", "status": "pending"}  # 1 of 2, recorded
    assert results[2]["error"] == "invalid_state" and results[2]["status"] == "rejected"
    assert results[3] == {"id": plain, "result": "decided", "status": "approved"}
    assert Approval.objects.filter(proposal_id=quorum).count() == 1


def test_bulk_reject_requires_a_reason(acme):
    pid = submit(acme).json()["id"]

    for body in ({"ids": [pid], "verdict": "reject"}, {"ids": [pid], "verdict": "reject", "reason": "  "}):
        response = bulk(acme.reviewer_client, **body)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_args"
        assert ["reason"] in [e["loc"] for e in response.json()["errors"]]

    ok = bulk(acme.reviewer_client, ids=[pid], verdict="reject", reason="not needed")
    assert ok.json()["results"] == [{"id": pid, "result": "decided", "status": "rejected"}]
    assert Proposal.objects.get(pk=pid).decisions.get().reason == "not needed"


@pytest.mark.parametrize(
    "body",
    [
        {"ids": "not a list", "verdict": "approve"},
        {"ids": ["not-a-uuid"], "verdict": "approve"},
        {"ids": [False], "verdict": "approve"},  # DRF's UUIDField alone reads false as the UUID 0
        {"ids": [7], "verdict": "approve"},
        {"ids": [], "verdict": "approve"},
        {"ids": [str(uuid.uuid4()) for _ in range(101)], "verdict": "approve"},
        {"ids": [str(uuid.uuid4())], "verdict": "maybe"},
        {"ids": [str(uuid.uuid4())], "verdict": "approve", "args_hashes": {"x": "y"}},
        {"ids": [str(uuid.uuid4())], "verdict": "approve", "args_hashes": {str(uuid.uuid4()): "y"}},
        ["not", "an", "object"],
    ],
)
def test_a_bad_shape_is_400_invalid_args_in_the_error_shape(acme, body):
    response = acme.reviewer_client.post("/api/v1/proposals/bulk/", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_args"
    assert response.json()["detail"]
    assert not Decision.objects.exists()


def test_an_agent_cannot_bulk_decide(acme):
    pid = submit(acme).json()["id"]

    response = bulk(acme.agent_client, ids=[pid], verdict="approve")

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert Proposal.objects.get(pk=pid).status == Status.PENDING


def test_another_tenants_id_is_not_found_like_an_unknown_one(acme, globex):
    theirs = submit(globex).json()["id"]
    unknown = str(uuid.uuid4())
    real_hash = Proposal.objects.get(pk=theirs).args_hash

    response = bulk(
        acme.reviewer_client, ids=[theirs, unknown], verdict="approve", args_hashes={theirs: real_hash}
    )

    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first == {**second, "id": theirs}  # nothing tells them apart
    assert first["result"] == "skipped" and first["error"] == "not_found" and first["status"] is None
    assert Proposal.objects.get(pk=theirs).status == Status.PENDING
    assert not Approval.objects.filter(proposal_id=theirs).exists()


def test_snooze_is_audited_and_changes_neither_status_nor_expiry(acme):
    pid = submit(acme).json()["id"]
    before = Proposal.objects.get(pk=pid)
    until = timezone.now() + timedelta(hours=4)

    snooze = services.proposal_snooze(proposal=before, reviewer=acme.reviewer, until=until, where=WHERE)

    after = Proposal.objects.get(pk=pid)
    assert (after.status, after.expires_at) == (before.status, before.expires_at)
    assert snooze.until == until
    event = AuditEvent.objects.get(action="proposal.snoozed", subject_id=pid)
    assert event.actor_label == acme.reviewer.username
    from approvals import selectors

    assert not selectors.for_you(acme.reviewer, Proposal.objects.all()).filter(pk=pid).exists()
    with pytest.raises(errors.DomainError):
        services.proposal_snooze(
            proposal=after, reviewer=acme.reviewer, until=timezone.now() - timedelta(minutes=1), where=WHERE
        )
    with pytest.raises(errors.NotAllowed):  # the requester it was made for cannot decide, nor snooze
        services.proposal_snooze(proposal=after, reviewer=acme.requester, until=until, where=WHERE)
    assert ReviewSnooze.objects.filter(proposal_id=pid).count() == 1


def test_reassign_is_audited_same_tenant_only_and_changes_neither_status_nor_expiry(acme, globex):
    second, _ = second_reviewer(acme)
    finance = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    finance.members.add(second)
    theirs = ReviewerGroup.objects.create(tenant=globex.tenant, name="finance")
    pid = submit(acme).json()["id"]
    before = Proposal.objects.get(pk=pid)

    with pytest.raises(errors.DomainError) as other_group:
        services.proposal_reassign(proposal=before, by=acme.reviewer, to_group=theirs, where=WHERE)
    with pytest.raises(errors.DomainError) as other_person:
        services.proposal_reassign(proposal=before, by=acme.reviewer, to_user=globex.reviewer, where=WHERE)
    assert other_group.value.status == other_person.value.status == 404
    assert Proposal.objects.get(pk=pid).review_group_id is None

    moved = services.proposal_reassign(
        proposal=before, by=acme.reviewer, to_group=finance, to_user=second, where=WHERE
    )

    assert (moved.review_group_id, moved.assignee_id) == (finance.pk, second.pk)
    after = Proposal.objects.get(pk=pid)
    assert (after.status, after.expires_at) == (before.status, before.expires_at)
    event = AuditEvent.objects.get(action="proposal.reassigned", subject_id=pid)
    assert event.data["to"] == {"group": "finance", "assignee": second.username}
    assert event.data["from"] == {"group": None, "assignee": None}
    # Now routed to finance: the first reviewer is outside it, so they can no longer hand it on.
    with pytest.raises(errors.NotAllowed):
        services.proposal_reassign(proposal=after, by=acme.reviewer, to_group=finance, where=WHERE)
