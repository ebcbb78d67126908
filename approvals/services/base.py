"""What every service shares: who acted (``agent_actor``, ``user_actor``), the audit event of a
proposal, and the proposal under a row lock (``_locked``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from approvals.auditlog import remember_locked
from approvals.models import (
    AgentCredential,
    Decision,
    Proposal,
)
from audit import services as audit
from audit.models import AuditEvent
from audit.services import Actor, Where


def agent_actor(agent: AgentCredential) -> Actor:
    return Actor(type="agent", id=str(agent.pk), label=agent.name)


def user_actor(user: User) -> Actor:
    return Actor(type="user", id=str(user.pk), label=user.get_username())

def _proposal_event(
    proposal: Proposal,
    *,
    actor: Actor,
    action: str,
    where: Where,
    result: str = "ok",
    data: dict[str, Any] | None = None,
    decision: Decision | None = None,
) -> AuditEvent:
    return audit.event(
        tenant=proposal.tenant.slug,
        actor=actor,
        action=action,
        where=where,
        subject_type="proposal",
        subject_id=str(proposal.pk),
        result=result,
        data={"tool": proposal.tool, "status": proposal.status, **(data or {})},
        decision_id=str(decision.pk) if decision else "",
        args_hash=proposal.args_hash,
    )


def _audit_proposal(proposal: Proposal, **fields: Any) -> None:
    audit.append(_proposal_event(proposal, **fields))


def _locked(proposal_id: Any) -> Proposal:
    """The proposal under a row lock, with its tenant and agent read (not locked).

    ``of=("self",)``: a plain ``FOR UPDATE`` over the join would lock the tenant's and the agent's rows as
    well, and every submission of the tenant (whose foreign-key check takes ``FOR KEY SHARE`` on the tenant)
    would wait for each decision and commit in flight. ``no_key``: the key never changes here, so rows that
    refer to the proposal (decisions, receipts) can be inserted beside the lock."""
    return remember_locked(
        Proposal.objects.select_for_update(of=("self",), no_key=True).select_related("tenant", "agent").get(pk=proposal_id)
    )
