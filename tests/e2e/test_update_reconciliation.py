"""``crm.update_ticket`` commits against a CRM that, like a real Zendesk, keeps no Idempotency-Key on PUT:
a commit whose own write landed (an answer lost, a re-run after a crash or a failure) is committed, found
applied, not sent twice; a ticket someone else moved after the preview is still stale. The commit service
in this process, the sandbox CRM in its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone

from adapters import breaker, registry
from approvals import services
from approvals.accounts import person_create
from approvals.models import Proposal, Receipt, Role, Status
from audit.models import AuditEvent
from audit.services import Where
from tests.conftest import Party
from tests.e2e.conftest import Sandbox

API = Where(channel="api", ip="127.0.0.1")
CREATE = {"subject": "Printer on fire", "description": "Smoke", "priority": "high"}
UPDATE = {"status": "solved", "comment": "Replaced the fuser; printing again."}

pytestmark = pytest.mark.django_db


@pytest.fixture
def zendesk(sandbox: Sandbox, settings: Any, sleeps: list[float]) -> Sandbox:
    """The sandbox CRM with a real Zendesk's PUT (Idempotency-Key ignored), and a short client timeout."""
    settings.ACME_HTTP_TIMEOUT = 0.5
    sandbox.control("POST", "config", {"put_idempotency": False})
    return sandbox


def approved_update(party: Party, ticket_id: int) -> Proposal:
    proposal = services.proposal_submit(
        agent=party.agent, tool="crm.update_ticket", args={"ticket_id": ticket_id, **UPDATE}, where=API
    ).proposal
    return services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)


def new_ticket() -> int:
    """A ticket the gateway created for acme: on the default CRM, which tenants share, acme may update it."""
    return int(
        registry.execute("crm.create_ticket", CREATE, idempotency_key="create", tenant="acme").external_id
    )


def calls_since(sandbox: Sandbox, start: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sandbox.requests("crm")[start:]]


def comment_bodies(sandbox: Sandbox) -> list[str]:
    return [c["body"] for c in sandbox.tickets()[0]["comments"]]


def paths(ticket_id: int) -> tuple[str, str]:
    base = f"/crm/api/v2/tickets/{ticket_id}"
    return f"{base}.json", f"{base}/comments.json"


def human_edit(sandbox: Sandbox, ticket_id: int, changes: dict[str, Any]) -> None:
    requests.put(
        f"{sandbox.url}/crm/api/v2/tickets/{ticket_id}.json",
        json={"ticket": changes},
        headers={"Authorization": "Bearer sandbox"},
        timeout=5,
    ).raise_for_status()


def dies_after_its_put(proposal: Proposal) -> None:
    """The first run: its PUT lands, then its worker dies before recording anything (the lease runs out)."""
    registry.execute(
        proposal.tool,
        proposal.args,
        idempotency_key=proposal.crm_idempotency_key,
        snapshot=proposal.preview["snapshot"],
        tenant=proposal.tenant.slug,  # as the commit runs it: on the proposal's tenant's connection
    )
    Proposal.objects.filter(pk=proposal.pk).update(
        status=Status.COMMITTING, lease_until=timezone.now() - timedelta(seconds=1)
    )


def test_a_put_whose_answer_was_lost_is_committed_once(acme: Party, zendesk: Sandbox) -> None:
    # given: the CRM applies the PUT but its answer never arrives
    ticket_id = new_ticket()
    proposal = approved_update(acme, ticket_id)
    zendesk.fault("write_then_timeout", method="PUT", seconds=1.0)
    start = len(zendesk.requests("crm"))
    # when
    result = services.proposal_commit(proposal_id=proposal.pk)
    # then: committed, the comment added once, and the receipt says the write was found applied
    ticket, comments = paths(ticket_id)
    assert result.outcome == "committed"
    assert calls_since(zendesk, start) == [
        ("GET", ticket),
        ("PUT", ticket),
        ("PUT", ticket),
        ("GET", ticket),
        ("GET", comments),
    ]
    assert comment_bodies(zendesk) == ["Smoke", UPDATE["comment"]]
    assert zendesk.tickets()[0]["status"] == "solved"
    receipt = Receipt.objects.get(proposal=proposal)
    assert receipt.response_summary["reconciled"] is True
    assert receipt.response_summary["updated_at"] == zendesk.tickets()[0]["updated_at"]
    assert receipt.attempts == 2
    call = AuditEvent.objects.get(action="outbound.call", subject_id=str(proposal.pk))
    assert call.data["reconciled"] is True


@pytest.mark.parametrize("first_run", ["worker_died", "failed_and_requeued", "deferred_mid_call"])
def test_a_rerun_after_the_first_runs_put_landed_commits_without_a_second_put(
    acme: Party, zendesk: Sandbox, settings: Any, first_run: str
) -> None:
    # given: a first run whose PUT landed without the commit being recorded
    ticket_id = new_ticket()
    proposal = approved_update(acme, ticket_id)
    if first_run == "worker_died":
        dies_after_its_put(proposal)
    elif first_run == "failed_and_requeued":
        # its only attempt's answer is lost: dead-lettered, then an admin requeues it
        settings.ACME_RETRY_MAX = 1
        zendesk.fault("write_then_timeout", method="PUT", seconds=1.0)
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"
        settings.ACME_RETRY_MAX = 5
        admin = person_create(tenant=acme.tenant, username="acme-admin", role=Role.ADMIN)
        services.proposal_requeue(proposal=proposal, admin=admin, where=API)
    elif first_run == "deferred_mid_call":
        # its first attempt's answer is lost and that failure opens the breaker: the retry is never sent,
        # the commit waits for the breaker; later the breaker closes and the commit's turn comes
        settings.ACME_BREAKER_FAILURES = 1
        zendesk.fault("write_then_timeout", method="PUT", seconds=1.0)
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "deferred"
        assert Proposal.objects.get(pk=proposal.pk).commit_attempts == 1
        breaker.reset("crm")
        Proposal.objects.filter(pk=proposal.pk).update(next_attempt_at=timezone.now())
    start = len(zendesk.requests("crm"))
    # when
    result = services.proposal_commit(proposal_id=proposal.pk)
    # then: committed from what the CRM shows; nothing sent again
    ticket, comments = paths(ticket_id)
    assert result.outcome == "committed"
    assert calls_since(zendesk, start) == [("GET", ticket), ("GET", comments)]
    assert comment_bodies(zendesk) == ["Smoke", UPDATE["comment"]]
    receipt = Receipt.objects.get(proposal=proposal)
    assert (receipt.response_summary["reconciled"], receipt.attempts) == (True, 0)
    # the audit says why this run looked first: it took over a dead worker's commit, or attempts were spent
    started = (
        AuditEvent.objects.filter(action="proposal.commit_started", subject_id=str(proposal.pk))
        .order_by("id")
        .last()
    )
    assert started is not None
    assert (started.data["resumed"], started.data["earlier_attempts"] > 0) == (
        (True, False) if first_run == "worker_died" else (False, True)
    )


@pytest.mark.parametrize(
    ("run", "edit", "looks_for_the_comment"),
    [
        # on a rerun: our status is not there, no need to look further
        ("rerun", {"subject": "Edited by a human"}, False),
        # on a rerun: our status is there, our comment is not
        ("rerun", {"status": "solved"}, True),
        # the very change we approved, made by a person: a first run sent nothing, so nothing there is ours
        ("first", {"status": "solved", "comment": {"body": UPDATE["comment"]}}, False),
    ],
)
def test_a_ticket_someone_else_moved_after_the_preview_stays_stale(
    acme: Party, zendesk: Sandbox, run: str, edit: dict[str, Any], looks_for_the_comment: bool
) -> None:
    # given: a person edits the ticket after the preview (on a rerun: while the first worker, dead before
    # its PUT, still held the commit)
    ticket_id = new_ticket()
    proposal = approved_update(acme, ticket_id)
    human_edit(zendesk, ticket_id, edit)
    if run == "rerun":
        Proposal.objects.filter(pk=proposal.pk).update(
            status=Status.COMMITTING, lease_until=timezone.now() - timedelta(seconds=1)
        )
    before = comment_bodies(zendesk)
    start = len(zendesk.requests("crm"))
    # when
    result = services.proposal_commit(proposal_id=proposal.pk)
    # then: stale, and no PUT
    ticket, comments = paths(ticket_id)
    assert result.outcome == "stale"
    assert Proposal.objects.get(pk=proposal.pk).status == Status.STALE
    looked = [("GET", comments)] if looks_for_the_comment else []
    assert calls_since(zendesk, start) == [("GET", ticket), *looked]
    assert comment_bodies(zendesk) == before
    assert not Receipt.objects.filter(proposal=proposal).exists()


def test_a_crm_without_the_comments_endpoint_leaves_a_lost_answer_stale(
    acme: Party, zendesk: Sandbox
) -> None:
    # given: the PUT lands, its answer is lost, and the CRM has no comments endpoint to show it
    ticket_id = new_ticket()
    proposal = approved_update(acme, ticket_id)
    ticket, comments = paths(ticket_id)
    zendesk.fault("write_then_timeout", method="PUT", seconds=1.0)
    zendesk.fault("status", status=404, method="GET", path=comments)
    start = len(zendesk.requests("crm"))
    # when
    result = services.proposal_commit(proposal_id=proposal.pk)
    # then: nothing proves the comment is ours, so it is reported stale (as before the reconciliation)
    assert result.outcome == "stale"
    assert [(r["method"], r["path"], r["fault"]) for r in zendesk.requests("crm")[start:]] == [
        ("GET", ticket, None),
        ("PUT", ticket, "write_then_timeout"),
        ("PUT", ticket, None),
        ("GET", ticket, None),
        ("GET", comments, "status"),
    ]
    assert comment_bodies(zendesk) == ["Smoke", UPDATE["comment"]]
    assert not Receipt.objects.filter(proposal=proposal).exists()
