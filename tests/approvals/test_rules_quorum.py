"""Approval rules (issue 22), the quorum: N approvals from distinct reviewers on the same args, the requester
never counting, an edit restarting the count, a rejection ending it; two approvals at once commit once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import responses
from django.db import connection, transaction

from approvals import errors, rules, services
from approvals.accounts import person_create
from approvals.models import Approval, Decision, Proposal, Receipt, Role, Status, ToolPolicy
from audit.models import AuditEvent
from audit.services import Where
from tests.approvals.test_api import TICKET, crm_created, submit

API = Where(channel="api")


def two_of_n(party: Any, **extra: Any) -> None:
    ToolPolicy.objects.create(
        tenant=party.tenant, name="tickets-two", tool="crm.create_ticket", approvals_required=2, **extra
    )


def second_reviewer(party: Any, name: str = "acme-second") -> Any:
    return person_create(tenant=party.tenant, username=name, role=Role.REVIEWER, password="pw-12345678")


def proposal(pid: str) -> Proposal:
    return Proposal.objects.get(pk=pid)


@pytest.mark.django_db
class TestQuorum:
    def test_the_rule_is_snapshotted_at_submit_and_one_approval_leaves_it_pending(self, acme):
        two_of_n(acme)
        pid = submit(acme).json()["id"]
        stored = proposal(pid)
        assert (stored.approvals_required, stored.approval_rule) == (2, "tickets-two")

        after = services.proposal_approve(proposal=stored, reviewer=acme.reviewer, where=API, comment="ok")

        assert after.status == Status.PENDING
        assert Decision.objects.filter(proposal_id=pid).count() == 0
        state = rules.approvals_state(proposal(pid))
        assert state["required"] == 2 and state["missing"] == 1
        assert [(g["by"], g["args_hash"], g["comment"]) for g in state["given"]] == [
            (acme.reviewer.username, stored.args_hash, "ok")
        ]
        event = AuditEvent.objects.get(action="proposal.approval_recorded", subject_id=pid)
        assert (event.data["given"], event.data["required"], event.data["comment"]) == (1, 2, "ok")

    def test_the_second_reviewer_completes_the_quorum_and_it_commits_once(
        self, acme, django_capture_on_commit_callbacks
    ):
        two_of_n(acme)
        pid = submit(acme).json()["id"]
        other = second_reviewer(acme)
        services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            crm_created(rsps)
            with django_capture_on_commit_callbacks(execute=True):
                services.proposal_approve(proposal=proposal(pid), reviewer=other, where=API)
            assert len(rsps.calls) == 1

        decision = Decision.objects.get(proposal_id=pid)
        assert decision.reviewer == other and decision.verdict == "approved"
        assert proposal(pid).status == Status.COMMITTED

    def test_the_same_reviewer_twice_is_409_already_approved_and_counts_once(self, acme):
        two_of_n(acme)
        pid = submit(acme).json()["id"]

        first = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")
        again = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")

        assert first.status_code in (200, 202)
        assert again.status_code == 409 and again.json()["error"] == "already_approved"
        assert Approval.objects.filter(proposal_id=pid).count() == 1
        assert proposal(pid).status == Status.PENDING
        with pytest.raises(errors.AlreadyApproved):
            services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)

    def test_an_edit_restarts_the_count(self, acme):
        two_of_n(acme)
        pid = submit(acme).json()["id"]
        other = second_reviewer(acme)
        services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)
        first_hash = proposal(pid).args_hash

        edited = services.proposal_approve(
            proposal=proposal(pid), reviewer=other, where=API, args={**TICKET, "subject": "Printer smoking"}
        )

        # The other reviewer approved other args: this is the first approval of these.
        assert edited.status == Status.PENDING and edited.args_hash != first_hash
        assert proposal(pid).args["subject"] == "Printer smoking"
        state = rules.approvals_state(proposal(pid))
        assert [g["by"] for g in state["given"]] == [other.username] and state["missing"] == 1
        # The first reviewer approves the edited args: now two people approved the same args.
        done = services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)
        assert done.status == Status.APPROVED
        assert Decision.objects.get(proposal_id=pid).args_hash == edited.args_hash

    def test_a_rejection_after_one_approval_ends_it(self, acme):
        two_of_n(acme)
        pid = submit(acme).json()["id"]
        other = second_reviewer(acme)
        services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)

        services.proposal_reject(proposal=proposal(pid), reviewer=other, reason="not this one", where=API)

        assert proposal(pid).status == Status.REJECTED
        assert Decision.objects.get(proposal_id=pid).verdict == "rejected"
        with pytest.raises(errors.InvalidTransition):
            services.proposal_approve(proposal=proposal(pid), reviewer=other, where=API)
        assert rules.approvals_state(proposal(pid))["missing"] == 0

    def test_the_requester_never_counts(self, acme):
        two_of_n(acme)
        pid = submit(acme, on_behalf_of=acme.reviewer.username).json()["id"]
        other = second_reviewer(acme)

        with pytest.raises(errors.NotAllowed):
            services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)
        services.proposal_approve(proposal=proposal(pid), reviewer=other, where=API)

        assert proposal(pid).status == Status.PENDING
        assert Approval.objects.filter(proposal_id=pid).count() == 1
        assert rules.may_decide(acme.reviewer, proposal(pid)) is False

    def test_an_approval_stops_counting_when_its_reviewer_leaves_the_tenants_reviewers(self, acme):
        two_of_n(acme)
        pid = submit(acme).json()["id"]
        other = second_reviewer(acme)
        services.proposal_approve(proposal=proposal(pid), reviewer=other, where=API)
        other.is_active = False
        other.save()

        after = services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API)

        assert after.status == Status.PENDING
        assert rules.approvals_state(proposal(pid))["missing"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_approving_at_once_commit_once(acme: Any) -> None:
    """Two approvals completing a 2-of-N quorum at the same moment: both are recorded, exactly one of them
    decides (one Decision), and the CRM receives one request (one Receipt)."""
    two_of_n(acme)
    pid = submit(acme).json()["id"]
    other = second_reviewer(acme)
    locked, release, failures = threading.Event(), threading.Event(), []

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                services._locked(pid)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def approve(reviewer: Any) -> None:
        try:
            services.proposal_approve(proposal=proposal(pid), reviewer=reviewer, where=API)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            connection.close()

    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        crm_created(rsps)
        holder = threading.Thread(target=hold_the_row)
        holder.start()
        assert locked.wait(10)
        approvers = [threading.Thread(target=approve, args=(r,)) for r in (acme.reviewer, other)]
        for thread in approvers:
            thread.start()
        threading.Event().wait(0.5)  # both wait on the row lock
        release.set()
        for thread in [holder, *approvers]:
            thread.join(20)
        assert len(rsps.calls) == 1

    assert failures == []
    assert Approval.objects.filter(proposal_id=pid).count() == 2
    assert Decision.objects.filter(proposal_id=pid).count() == 1
    assert Receipt.objects.filter(proposal_id=pid).count() == 1
    assert proposal(pid).status == Status.COMMITTED
