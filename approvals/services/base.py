"""What every service shares: who acted (``agent_actor``, ``user_actor``), an audit event of a proposal that
changes no status (``_audit_proposal``; a status change audits itself, ``lifecycle.transition``), and the
proposal under a row lock (``_locked``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from approvals.lifecycle import proposal_event as _proposal_event
from approvals.models import (
    AgentCredential,
    Proposal,
)
from audit import services as audit
from audit.prepared import Param, PreparedRead
from audit.services import Actor, Where


def agent_actor(agent: AgentCredential) -> Actor:
    return Actor(type="agent", id=str(agent.pk), label=agent.name)


def user_actor(user: User) -> Actor:
    return Actor(type="user", id=str(user.pk), label=user.get_username())


def where_fields(where: Where) -> dict[str, Any]:
    """The request fields an ``Approval`` and a ``Decision`` keep of where it was made (the channel as one of
    the model's choices, the user agent cut to its column)."""
    return {
        "channel": where.channel if where.channel in ("api", "web", "slack") else "cli",
        "ip": where.ip or None,
        "user_agent": where.user_agent[:256],
    }


def _audit_proposal(proposal: Proposal, **fields: Any) -> None:
    audit.append(_proposal_event(proposal, **fields))


def _locked(proposal_id: Any) -> Proposal:
    """The proposal under a row lock, with its tenant and agent read (not locked).

    ``of=("self",)``: a plain ``FOR UPDATE`` over the join would lock the tenant's and the agent's rows as
    well, and every submission of the tenant (whose foreign-key check takes ``FOR KEY SHARE`` on the tenant)
    would wait for each decision and commit in flight. ``no_key``: the key never changes here, so rows that
    refer to the proposal (decisions, receipts) can be inserted beside the lock."""
    found = _LOCKED.rows(pk=proposal_id)
    if not found:
        raise Proposal.DoesNotExist("Proposal matching query does not exist.")
    return found[0]


# Every decision and commit takes it: compiled once (audit.prepared).
_LOCKED = PreparedRead(
    lambda pk: (
        Proposal.objects.select_for_update(of=("self",), no_key=True)
        .select_related("tenant", "agent")
        .filter(pk=pk)
    ),
    pk=Param.UUID,
)


def args_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What a reviewer's edit changed, field by field (``{"field", "before", "after"}``, sorted by field): what
    ``Decision.edited_from`` stores and what the review page shows before an edit is approved."""
    return [
        {"field": f, "before": before.get(f), "after": after.get(f)}
        for f in sorted(set(before) | set(after))
        if before.get(f) != after.get(f)
    ]
