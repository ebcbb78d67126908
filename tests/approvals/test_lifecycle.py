"""approvals/lifecycle.py: every transition of the table, driven through the service that makes it, does what
the table says (source, target, reason, audit action and result, staged commit, agent webhook); and no other
code sets a status."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from adapters import errors as adapter_errors
from adapters import registry
from approvals import errors, lifecycle, services, views
from approvals.models import AgentCredential, OutboxMessage, Proposal, Status, WebhookDelivery
from approvals.services.claim import _claim
from audit.models import AuditEvent
from audit.services import Where

API = Where(channel="api", ip="127.0.0.1")
HOOK = "https://agent.example/hook"
TICKETS_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets.json"
ARGS = {"subject": "Broken login", "description": "Users cannot log in.", "priority": "high"}


def pending(party: Any) -> Proposal:
    return services.proposal_submit(
        agent=party.agent, tool="crm.create_ticket", args=ARGS, where=API
    ).proposal


def approved(party: Any) -> Proposal:
    return services.proposal_approve(proposal=pending(party), reviewer=party.reviewer, where=API)


def failing(exc: Exception) -> Callable[..., Any]:
    def execute(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return execute


def committed_by_the_crm(party: Any, pk: Any) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            TICKETS_URL,
            status=201,
            json={
                "ticket": {
                    "id": 77,
                    "subject": "Broken login",
                    "priority": "high",
                    "status": "new",
                    "updated_at": "2026-11-23T10:00:00Z",
                }
            },
        )
        services.proposal_commit(proposal_id=pk)


def failed(party: Any, monkeypatch: Any) -> Proposal:
    proposal = approved(party)
    monkeypatch.setattr(registry, "execute", failing(adapter_errors.PermanentFailure("crm: 422")))
    services.proposal_commit(proposal_id=proposal.pk)
    monkeypatch.undo()
    return Proposal.objects.get(pk=proposal.pk)


# Each transition: (bring a proposal to a source state, then run the service that makes the transition).
Setup = Callable[[Any, Any], Proposal]
Run = Callable[[Any, Any, Proposal], Any]
DRIVERS: dict[str, tuple[Setup, Run]] = {
    "approve": (
        lambda p, m: pending(p),
        lambda p, m, x: services.proposal_approve(proposal=x, reviewer=p.reviewer, where=API),
    ),
    "reject": (
        lambda p, m: pending(p),
        lambda p, m, x: services.proposal_reject(proposal=x, reviewer=p.reviewer, reason="no", where=API),
    ),
    "request_changes": (
        lambda p, m: pending(p),
        lambda p, m, x: services.proposal_request_changes(
            proposal=x, reviewer=p.reviewer, reason="lower the priority", where=API
        ),
    ),
    "cancel": (
        lambda p, m: pending(p),
        lambda p, m, x: services.proposal_cancel(proposal=x, agent=p.agent, where=API),
    ),
    "revoke": (
        lambda p, m: pending(p),
        lambda p, m, x: services.agent_deactivate(agent=p.agent, by=p.reviewer, where=API),
    ),
    "expire": (
        lambda p, m: pending(p),
        lambda p, m, x: (
            Proposal.objects.filter(pk=x.pk).update(expires_at=timezone.now() - timedelta(1)),
            services.proposal_expire_due(),
        ),
    ),
    "claim": (lambda p, m: approved(p), lambda p, m, x: _claim(x.pk)),
    "refuse_revoked": (
        lambda p, m: approved(p),
        lambda p, m, x: (
            AgentCredential.objects.filter(pk=p.agent.pk).update(is_active=False),
            services.proposal_commit(proposal_id=x.pk),
        ),
    ),
    "refuse_mismatch": (
        lambda p, m: approved(p),
        lambda p, m, x: (
            Proposal.objects.filter(pk=x.pk).update(args={**ARGS, "subject": "Other"}),
            services.proposal_commit(proposal_id=x.pk),
        ),
    ),
    "commit": (lambda p, m: approved(p), lambda p, m, x: committed_by_the_crm(p, x.pk)),
    "defer": (
        lambda p, m: approved(p),
        lambda p, m, x: (
            m.setattr(
                registry,
                "execute",
                failing(adapter_errors.Deferred(reason="breaker_open", retry_at=time.time() + 30)),
            ),
            services.proposal_commit(proposal_id=x.pk),
        ),
    ),
    "fail": (
        lambda p, m: approved(p),
        lambda p, m, x: (
            m.setattr(registry, "execute", failing(adapter_errors.PermanentFailure("crm: 422"))),
            services.proposal_commit(proposal_id=x.pk),
        ),
    ),
    "go_stale": (
        lambda p, m: approved(p),
        lambda p, m, x: (
            m.setattr(registry, "execute", failing(adapter_errors.StaleTarget("moved"))),
            services.proposal_commit(proposal_id=x.pk),
        ),
    ),
    "requeue": (failed, lambda p, m, x: services.proposal_requeue(proposal=x, admin=p.reviewer, where=API)),
}


AFTER_A_CLAIM = {"commit", "defer", "fail", "go_stale"}


def test_every_transition_has_a_driver():
    assert set(DRIVERS) == set(lifecycle.TRANSITIONS)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(lifecycle.TRANSITIONS))
def test_each_service_makes_its_transition_as_the_table_says(acme, monkeypatch, name):
    # given a proposal of a hooked agent in one of the transition's sources
    spec = lifecycle.TRANSITIONS[name]
    AgentCredential.objects.filter(pk=acme.agent.pk).update(webhook_url=HOOK)
    acme.agent.refresh_from_db()
    setup, run = DRIVERS[name]
    proposal = setup(acme, monkeypatch)
    # proposal_commit claims the proposal first: its outcome's transition starts from the claim's target
    found = lifecycle.TRANSITIONS["claim"].target if name in AFTER_A_CLAIM else proposal.status
    assert found in spec.sources
    events_before = AuditEvent.objects.filter(subject_id=str(proposal.pk)).count()
    hooks_before = set(WebhookDelivery.objects.values_list("pk", flat=True))
    commits_before = OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.COMMIT, payload__proposal_id=str(proposal.pk)
    ).count()

    # when its service runs
    run(acme, monkeypatch, proposal)

    # then the status, the reason, the audit, the staged commit and the webhook are the table's
    proposal.refresh_from_db()
    assert proposal.status == spec.target
    if spec.reason is not None:
        assert proposal.status_reason == spec.reason
    new_events = list(AuditEvent.objects.filter(subject_id=str(proposal.pk)).order_by("id")[events_before:])
    assert new_events[-1].action == spec.action and new_events[-1].result == spec.result
    assert new_events[-1].data["status"] == spec.target
    hooks = [d.event for d in WebhookDelivery.objects.exclude(pk__in=hooks_before)]
    assert hooks == ([spec.webhook] if spec.webhook else [])
    commits = OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.COMMIT, payload__proposal_id=str(proposal.pk)
    )
    assert commits.count() == commits_before + (1 if spec.stages_commit else 0)


@pytest.mark.django_db
def test_a_transition_from_a_status_outside_its_sources_changes_nothing(acme):
    proposal = services.proposal_reject(
        proposal=pending(acme), reviewer=acme.reviewer, reason="no", where=API
    )
    events = AuditEvent.objects.count()

    with pytest.raises(errors.InvalidTransition):
        lifecycle.transition(proposal, "approve", actor=services.user_actor(acme.reviewer), where=API)

    assert Proposal.objects.get(pk=proposal.pk).status == Status.REJECTED
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_status_questions(acme):
    proposal = approved(acme)
    assert lifecycle.is_live(proposal) and not lifecycle.is_waiting(proposal)
    proposal.status_reason = lifecycle.waiting_reason("breaker_open", system="crm", at=timezone.now())
    assert lifecycle.is_waiting(proposal)
    proposal.status, proposal.discarded_at = Status.FAILED, None
    assert lifecycle.is_dead_letter(proposal) and not lifecycle.is_live(proposal)
    proposal.discarded_at = timezone.now()
    assert not lifecycle.is_dead_letter(proposal)


def test_the_reviewer_page_polls_the_live_statuses_only():
    assert set(views.POLL_MS) == lifecycle.LIVE


def test_no_code_but_the_lifecycle_sets_a_proposal_status():
    root = Path(__file__).resolve().parents[2] / "approvals"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "lifecycle.py" or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ".status = " in line and "delivery.status" not in line and "self.status" not in line:
                offenders.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
            if re.search(r"\.update\([^)]*\bstatus=", line):
                offenders.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    assert offenders == []
