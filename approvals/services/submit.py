"""Submit: validate, normalize, check policy, preview and store a pending proposal; idempotency and replay."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from adapters import errors as adapter_errors
from adapters import policy, registry
from approvals import errors, lifecycle, notifications
from approvals.models import (
    AgentCredential,
    Proposal,
)
from approvals.services.base import _audit_proposal, agent_actor
from approvals.services.context import agent_context, approval_fields
from approvals.services.intake import _take_submission
from approvals.slack import notify as slack_notify
from audit import services as audit
from audit.prepared import Param, PreparedRead
from audit.prepared_writes import PreparedInsert
from audit.services import Where


def derive_idempotency_key(
    *, tool: str, args: dict[str, Any], agent: AgentCredential, on_behalf_of: Any, window: int | None = None
) -> str:
    """Contract 3: sha256 of (tool, normalized args, agent, on_behalf_of) when the agent sends no key, and of
    the derived-key window it falls in (``window``: its index, see ``_derived_keys``; None: none)."""
    material = json.dumps(
        [tool, args, agent.pk, getattr(on_behalf_of, "pk", None), *([] if window is None else [window])],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "derived-" + hashlib.sha256(material.encode()).hexdigest()


def _derived_keys(
    *, tool: str, args: dict[str, Any], agent: AgentCredential, on_behalf_of: Any
) -> tuple[str, str]:
    """The derived key of now and of the window before (ACME_DERIVED_KEY_WINDOW seconds each).

    A derived key stands for "the same request again" only for a while (as Stripe's keys expire after 24 h):
    after a rejection the agent can propose the same args again once the window has passed. The window slides:
    a proposal made less than a window ago is in this window or the one before, so ``proposal_submit`` looks
    for it under both keys, and replays it only while it is younger than a window. An explicit key never
    expires."""
    window = int(timezone.now().timestamp() // settings.ACME_DERIVED_KEY_WINDOW)
    same = {"tool": tool, "args": args, "agent": agent, "on_behalf_of": on_behalf_of}
    return derive_idempotency_key(**same, window=window), derive_idempotency_key(**same, window=window - 1)


def _recent_derived(
    *, agent: AgentCredential, key: str, args_hash: str, tool: str, on_behalf_of: User | None
) -> Proposal | None:
    """The agent's proposal under the previous window's derived ``key``, if it is younger than a window."""
    existing = _replay(agent=agent, key=key, args_hash=args_hash, tool=tool, on_behalf_of=on_behalf_of)
    horizon = timezone.now() - timedelta(seconds=settings.ACME_DERIVED_KEY_WINDOW)
    return existing if existing is not None and existing.created_at >= horizon else None


@dataclass(frozen=True)
class Submitted:
    proposal: Proposal
    created: bool


def proposal_submit(
    *,
    agent: AgentCredential,
    tool: str,
    args: Any,
    rationale: str = "",
    on_behalf_of: User | None = None,
    idempotency_key: str | None = None,
    where: Where,
) -> Submitted:
    """Validate, normalize, check policy, preview, and store a pending proposal (or replay a stored one).

    Raises adapters' InvalidArgs / UnknownTool / PolicyDenied (RateLimited over the agent's submission
    budget), or IdempotencyConflict.
    """
    _take_submission(agent)
    tenant = agent.tenant
    ctx = agent_context(agent)
    try:
        prepared = registry.prepare(tool, args, ctx)
    except adapter_errors.RateLimited as limited:
        replay = _replay_of(agent=agent, tool=tool, args=args, on_behalf_of=on_behalf_of, key=idempotency_key)
        return _replay_or_refuse(replay, limited, agent=agent, tool=tool, where=where)
    except adapter_errors.PolicyDenied as denied:
        # A retry of a submission stored before the policy was tightened is answered with what was stored:
        # a 403 would tell the agent it was refused while its proposal waits for a reviewer.
        replay = _replay_of(agent=agent, tool=tool, args=args, on_behalf_of=on_behalf_of, key=idempotency_key)
        if replay is not None:
            return Submitted(replay, created=False)
        _audit_denied(agent, tool, where, denied.policy)
        raise
    if not prepared.tool.requires_approval:
        raise adapter_errors.InvalidArgs(
            errors=[
                {
                    "loc": ["tool"],
                    "msg": f"{tool} is a read tool: call it directly, it needs no proposal",
                    "type": "read_tool",
                }
            ]
        )
    key = idempotency_key
    if not key:
        key, previous = _derived_keys(tool=tool, args=prepared.args, agent=agent, on_behalf_of=on_behalf_of)
        recent = _recent_derived(
            agent=agent, key=previous, args_hash=prepared.args_hash, tool=tool, on_behalf_of=on_behalf_of
        )
        if recent is not None:
            return Submitted(recent, created=False)
    # No lookup first: the unique (agent, idempotency_key) constraint finds a replay at the insert, so a
    # new submission costs no extra query and racing duplicates are settled by the database.
    now = timezone.now()
    try:
        with transaction.atomic():
            if policy.rate_limit_applies(tool, ctx):
                # The count in prepare() ran before the preview, outside any lock: concurrent submissions
                # could all pass it. Count again, one submission of this agent and tool at a time, until
                # this transaction (and its proposal) is committed.
                audit.transaction_lock(f"rate:{agent.pk}:{tool}")
                policy.check_rate(prepared.tool, ctx)
            proposal = _INSERT.insert(
                Proposal(
                    tenant=tenant,
                    agent=agent,
                    on_behalf_of=on_behalf_of,
                    tool=tool,
                    args=prepared.args,
                    args_hash=prepared.args_hash,
                    submitted_args_hash=prepared.args_hash,
                    rationale=rationale,
                    risk=prepared.risk,
                    preview=prepared.preview.as_dict(),
                    idempotency_key=key,
                    expires_at=now + timedelta(seconds=settings.ACME_PROPOSAL_TTL),
                    **approval_fields(ctx, tool, prepared.risk),
                )
            )
            # Its tenant's Slack review channel hears of it (staged: Slack being down costs intake nothing).
            slack_notify.stage_post(proposal)
            # Its reviewers' next email batch lists it (staged in the outbox, like the Slack post).
            notifications.stage_new(proposal)
            # The audit event last: appending takes the tenant's chain lock until this transaction ends, so
            # every other write of the transaction is done before it (one tenant's writers queue on it).
            _audit_proposal(
                proposal,
                actor=agent_actor(agent),
                action="proposal.submitted",
                where=where,
                data={"args": proposal.args},
                fields=lifecycle.SUBMITTED_FIELDS,
            )
    except adapter_errors.RateLimited as limited:
        existing = _replay(
            agent=agent, key=key, args_hash=prepared.args_hash, tool=tool, on_behalf_of=on_behalf_of
        )
        return _replay_or_refuse(existing, limited, agent=agent, tool=tool, where=where)
    except IntegrityError:
        # The key exists (an earlier or a concurrent submission): answer as a replay of it, or 409.
        existing = _replay(
            agent=agent, key=key, args_hash=prepared.args_hash, tool=tool, on_behalf_of=on_behalf_of
        )
        if existing is None:
            raise
        return Submitted(existing, created=False)
    return Submitted(proposal, created=True)


def _replay_or_refuse(
    replay: Proposal | None,
    limited: adapter_errors.RateLimited,
    *,
    agent: AgentCredential,
    tool: str,
    where: Where,
) -> Submitted:
    """Over the hourly limit: a retry of a submission already stored is a replay, not a new proposal, and
    must not be refused by the limit that its own first attempt counts towards; anything else is refused."""
    if replay is not None:
        return Submitted(replay, created=False)
    _audit_denied(agent, tool, where, limited.policy)
    raise limited


def _audit_denied(agent: AgentCredential, tool: str, where: Where, policy_name: str) -> None:
    with transaction.atomic():
        audit.record(
            tenant=agent.tenant.slug,
            actor=agent_actor(agent),
            action="proposal.denied",
            where=where,
            result="denied",
            data={"tool": tool, "policy": policy_name},
        )


def _replay_of(
    *, agent: AgentCredential, tool: str, args: Any, on_behalf_of: Any, key: str | None
) -> Proposal | None:
    """The stored proposal this submission replays, if any (validation only: no policy, no preview)."""
    normalized = registry.validate(registry.get(tool), args).model_dump(mode="json", exclude_none=True)
    args_hash = registry.args_hash(normalized)
    if key:
        return _replay(agent=agent, key=key, args_hash=args_hash, tool=tool, on_behalf_of=on_behalf_of)
    current, previous = _derived_keys(tool=tool, args=normalized, agent=agent, on_behalf_of=on_behalf_of)
    return _replay(
        agent=agent, key=current, args_hash=args_hash, tool=tool, on_behalf_of=on_behalf_of
    ) or _recent_derived(agent=agent, key=previous, args_hash=args_hash, tool=tool, on_behalf_of=on_behalf_of)


_INSERT = PreparedInsert(Proposal)  # compiled once (audit.prepared)
_KEY = PreparedRead(  # compiled once (audit.prepared): asked on every submission without a key of its own
    lambda agent_id, key: Proposal.objects.filter(agent_id=agent_id, idempotency_key=key).values_list(
        "pk", flat=True
    )[:1],
    agent_id=Param.INT,
    key=Param.TEXT,
)


def _replay(
    *, agent: AgentCredential, key: str, args_hash: str, tool: str, on_behalf_of: User | None
) -> Proposal | None:
    """The agent's own proposal under ``key``. Keys are the agent's: another agent of the tenant that sends
    the same key makes its own proposal, and never learns of (or reads back) this one."""
    # Most submissions are new: ask for the key alone first (one column, no join, no ORDER BY: the pair is
    # unique), and read the whole proposal only for a replay.
    found = _KEY.rows(agent_id=agent.pk, key=key)
    if not found:
        return None
    existing = Proposal.objects.select_related("tenant").get(pk=found[0])
    # The args as approved (a reviewer may have edited them) or as this agent submitted them: either way the
    # same request again, answered with the proposal it made.
    # For someone else (on_behalf_of) it is another request: whose self-approval the proposal guards against
    # is part of what the key stands for.
    same_args = args_hash in (existing.args_hash, existing.submitted_args_hash or existing.args_hash)
    same_person = existing.on_behalf_of_id == (on_behalf_of.pk if on_behalf_of is not None else None)
    if not same_args or not same_person or existing.tool != tool:
        raise errors.IdempotencyConflict(errors.KEY_REUSED, proposal=str(existing.pk))
    return existing
