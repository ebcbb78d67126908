"""The audit trail is the history of a proposal, its decision and its receipt (django-auditlog no longer
keeps theirs, issue 21): what their field history showed, the trail's admin and export show."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from django.contrib.auth import get_user_model

from approvals import lifecycle, services
from audit.models import AuditEvent

from .conftest import API, ARGS, WEB, committed_life


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client.force_login(admin)
    return client


def exported(staff_client: Any, subject: object) -> dict[str, dict[str, Any]]:
    response = staff_client.get(f"/admin/audit/auditevent/export/json/?tenant=acme&subject={subject}")
    assert response.status_code == 200
    rows = json.loads(b"".join(cast(Iterator[bytes], response.streaming_content)).decode())
    return {row["action"]: row for row in rows}


def test_the_export_of_a_committed_proposal_holds_what_its_field_history_held(staff_client, acme):
    proposal = committed_life(acme)
    decision = proposal.decisions.get()
    receipt = proposal.receipt

    rows = exported(staff_client, proposal.pk)

    # The proposal: its status and status_reason at every step, and the fields each step saved.
    submitted = rows["proposal.submitted"]
    assert submitted["args_hash"] == proposal.args_hash
    assert submitted["data"]["status"] == "pending"
    assert submitted["data"]["args"] == ARGS
    assert submitted["data"]["fields"] == {
        "risk": proposal.risk,
        "rationale": proposal.rationale,
        "idempotency_key": proposal.idempotency_key,
        "expires_at": proposal.expires_at.isoformat(),
        "on_behalf_of": None,
        "submitted_args_hash": proposal.submitted_args_hash,
        "approvals_required": 1,
        "review_group": None,
        "approval_rule": proposal.approval_rule,
        "assignee": None,
    }
    walk = [
        (row["data"]["status"], row["data"]["status_reason"])
        for action, row in rows.items()
        if action in ("proposal.approved", "proposal.commit_started", "proposal.committed")
    ]
    assert walk == [
        ("approved", lifecycle.APPROVED_REASON),
        ("committing", lifecycle.CLAIMED_REASON),
        ("committed", ""),
    ]
    assert rows["proposal.committed"]["data"]["fields"] == {"commit_attempts": 1}
    assert rows["proposal.commit_started"]["data"]["fields"] == {"lease_token": 1}

    # The decision: verdict, reason, args hash, edits, channel, address, browser and reviewer.
    approved = rows["proposal.approved"]
    assert approved["decision_id"] == str(decision.pk)
    assert approved["data"]["verdict"] == decision.verdict == "approved"
    assert approved["data"]["comment"] == decision.reason == "ok"
    assert approved["data"]["edits"] == [] and decision.edited_from is None
    assert approved["args_hash"] == decision.args_hash
    assert (approved["channel"], approved["ip"], approved["user_agent"]) == (
        decision.channel,
        decision.ip,
        decision.user_agent,
    )
    assert approved["actor_label"] == acme.reviewer.get_username()

    # The receipt: every field of the row.
    assert rows["proposal.committed"]["data"]["receipt"] == {
        "system": receipt.system,
        "external_id": receipt.external_id,
        "external_url": receipt.external_url,
        "attempts": receipt.attempts,
        "args_hash": receipt.args_hash,
        "response_summary": receipt.response_summary,
    }
    assert receipt.external_id == "77" and receipt.external_url


def test_a_rejection_and_a_request_for_changes_say_their_verdict_and_reason(staff_client, acme):
    ended = []
    for subject, end in (("one", services.proposal_reject), ("two", services.proposal_request_changes)):
        proposal = services.proposal_submit(
            agent=acme.agent, tool="crm.create_ticket", args={**ARGS, "subject": subject}, where=API
        ).proposal
        end(proposal=proposal, reviewer=acme.reviewer, reason="Not this way.", where=WEB)
        ended.append(proposal)

    rejected = exported(staff_client, ended[0].pk)["proposal.rejected"]["data"]
    changes = exported(staff_client, ended[1].pk)["proposal.changes_requested"]["data"]

    assert (rejected["verdict"], rejected["reason"], rejected["status"]) == (
        "rejected",
        "Not this way.",
        "rejected",
    )
    assert (changes["verdict"], changes["reason"]) == ("changes_requested", "Not this way.")
    assert changes["status_reason"] == lifecycle.CHANGES_REQUESTED_REASON.format(reason="Not this way.")


def test_an_edit_at_approval_records_the_edits_and_the_args_approved(staff_client, acme):
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=API
    ).proposal
    services.proposal_approve(
        proposal=proposal,
        reviewer=acme.reviewer,
        where=WEB,
        comment="fixed",
        args={**ARGS, "priority": "low"},
    )
    proposal.refresh_from_db()

    approved = exported(staff_client, proposal.pk)["proposal.approved"]

    assert approved["data"]["edits"] == [{"field": "priority", "before": "high", "after": "low"}]
    assert approved["data"]["args"]["priority"] == "low"
    assert (
        approved["args_hash"]
        == proposal.args_hash
        != AuditEvent.objects.get(subject_id=str(proposal.pk), action="proposal.submitted").args_hash
    )


def test_the_admin_lists_each_events_status_and_shows_what_it_recorded(staff_client, acme):
    proposal = committed_life(acme)
    committed = AuditEvent.objects.get(subject_id=str(proposal.pk), action="proposal.committed")

    listing = staff_client.get(f"/admin/audit/auditevent/?tenant=acme&subject={proposal.pk}").content.decode()
    detail = staff_client.get(f"/admin/audit/auditevent/{committed.pk}/change/").content.decode()

    for status in ("pending", "approved", "committing", "committed"):
        assert f'<td class="field-status">{status}</td>' in listing, status
    assert proposal.receipt.external_url in detail
    assert "commit_attempts" in detail and "status_reason" in detail
