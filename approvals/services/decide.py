"""Decide: a reviewer approves, rejects or asks changes to a pending proposal, its agent cancels it, it expires; revoking an agent
cancels its pending proposals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from adapters import registry
from adapters.normalize import strip_invisible
from approvals import errors, lifecycle, rules, selectors
from approvals.models import (
    AgentCredential,
    Decision,
    Proposal,
    Status,
    Verdict,
)
from approvals.services.base import _locked, agent_actor, args_changes, user_actor, where_fields
from approvals.services.context import approval_fields, edit_context
from approvals.services.quorum import approval_recorded, record_approval
from audit import services as audit
from audit.prepared_writes import PreparedInsert
from audit.services import Where


class _Due(Exception):
    """A pending proposal found past its expiry while deciding on it."""


def _on_pending(pk: Any, action: str, change: Callable[[Proposal], Proposal]) -> Proposal:
    """Run ``change`` on the locked proposal if it is pending, in one transaction; otherwise raise
    InvalidTransition. One found past its expiry is expired (in its own transaction, so the expiry sticks)."""
    try:
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.PENDING and locked.expires_at <= timezone.now():
                raise _Due
            if locked.status != Status.PENDING:
                raise errors.InvalidTransition(
                    errors.INVALID_STATE.format(status=locked.status, action=action, allowed="pending"),
                    status=locked.status,
                )
            return change(locked)
    except _Due:
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.PENDING:
                _expire(locked)
        raise errors.InvalidTransition(
            errors.INVALID_STATE.format(status=Status.EXPIRED, action=action, allowed="pending"),
            status=Status.EXPIRED,
        ) from None


def reason_given(reason: str) -> bool:
    """Whether a rejection's (or a request for changes') reason has something visible in it: spaces and
    invisible characters (zero-width, bidi controls, Braille blank) alone are no reason the agent can read."""
    return bool(strip_invisible(reason or "").strip())


def require_reviewer(proposal: Proposal, reviewer: User) -> None:
    """Raise NotAllowed unless ``reviewer`` may decide on ``proposal`` (``rules.may_decide``): a reviewer or
    admin of its tenant, not the person it was made on behalf of, and a member of the reviewer group it is
    routed to, if any (NotInReviewGroup)."""
    if not selectors.may_review(reviewer, proposal.tenant_id):
        raise errors.NotAllowed(errors.NOT_A_REVIEWER)
    if proposal.on_behalf_of_id is not None and proposal.on_behalf_of_id == reviewer.pk:
        raise errors.NotAllowed(errors.SELF_APPROVAL, error="self_approval_forbidden")
    rules.require_review_group(reviewer, proposal)


_DECISION = PreparedInsert(Decision)  # compiled once (audit.prepared_writes)


def _decide(
    locked: Proposal,
    reviewer: User,
    verdict: Verdict,
    reason: str,
    where: Where,
    edited_from: list[dict[str, Any]] | None = None,
) -> Decision:
    # No savepoint: under the row lock a pending proposal has no decision, so the unique constraint cannot
    # fire here. Where row locks are not available it is the backstop; its error ends the caller's
    # transaction (nothing of this decision is kept) and answers like any decision that came second.
    try:
        with transaction.atomic(savepoint=False):
            decision = _DECISION.insert(
                Decision(
                    proposal=locked,
                    reviewer=reviewer,
                    verdict=verdict,
                    reason=reason,
                    args_hash=locked.args_hash,
                    edited_from=edited_from,
                    **where_fields(where),
                )
            )
    except IntegrityError:
        # The other decision won.
        raise errors.InvalidTransition(
            errors.INVALID_STATE.format(status="decided", action=verdict, allowed="pending")
        ) from None
    # The proposal's latest decision, where the API list prefetches it: answering needs no query for it.
    locked.prefetched_decisions = [decision]  # type: ignore[attr-defined]
    return decision


def proposal_approve(
    *,
    proposal: Proposal,
    reviewer: User,
    where: Where,
    comment: str = "",
    args: Any = None,
    seen_snapshot: dict[str, Any] | None = None,
    args_hash: str | None = None,
) -> Proposal:
    """Record the approval of the exact args (edited ones when ``args`` is given); the approval that
    completes the proposal's quorum (``approvals_required`` distinct reviewers on the same args) decides it
    and stages the commit. Short of it the proposal stays pending: callers tell by its ``status``.

    An edit is previewed again (for an update, a fresh read of the target). That fresh read must show the
    target as the reviewer saw it: ``seen_snapshot`` (the browser's edit preview), else the proposal's
    stored preview (what an API reviewer saw). Otherwise TargetChanged: approving would adopt a state of
    the target nobody reviewed, and the commit's staleness check would compare against it. An edit changes
    the args hash, so approvals given before it stop counting; one that changes the risk takes the approval
    rule of the new risk (its reviewer must be in the group that rule routes to).

    ``args_hash``: the args hash the reviewer had on screen. Compared under the row lock: when another
    reviewer's edit changed the args since, ArgsChanged (409 args_changed) and nothing is recorded, so an
    approval never completes a quorum on args its reviewer did not see. Without it the approval is of the args
    as they stand when it is recorded."""
    require_reviewer(proposal, reviewer)
    edited = None
    if args is not None:
        # The edit goes through the same contract and policy as the agent's submission.
        agent = AgentCredential.objects.select_related("tenant").get(pk=proposal.agent_id)
        ctx = edit_context(agent)
        edited = registry.prepare(proposal.tool, args, ctx)

    def change(locked: Proposal) -> Proposal:
        if not locked.agent.is_active:
            raise errors.AgentRevoked(
                errors.AGENT_REVOKED.format(agent=locked.agent.name), status=locked.status
            )
        # Under the lock: the proposal may have been routed elsewhere since it was read.
        rules.require_review_group(reviewer, locked)
        if args_hash is not None and args_hash != locked.args_hash:
            raise errors.ArgsChanged(errors.ARGS_CHANGED)
        edited_from = None
        fields: list[str] = []
        if edited is not None and edited.args_hash != locked.args_hash:
            seen = (
                seen_snapshot if seen_snapshot is not None else (locked.preview or {}).get("snapshot") or {}
            )
            if (edited.preview.snapshot or {}) != seen:
                raise errors.TargetChanged(errors.TARGET_CHANGED)
            edited_from = args_changes(locked.args, edited.args)
            fields = ["args", "args_hash", "risk", "preview"]
            if edited.risk != locked.risk:
                for name, value in approval_fields(ctx, locked.tool, edited.risk).items():
                    setattr(locked, name, value)
                fields += ["approvals_required", "review_group", "approval_rule"]
                rules.require_review_group(reviewer, locked)
            locked.args = edited.args
            locked.args_hash = edited.args_hash
            locked.risk = edited.risk
            locked.preview = edited.preview.as_dict()
        given = record_approval(locked, reviewer, comment, where)
        if given < locked.approvals_required:
            return approval_recorded(
                locked, reviewer, given=given, comment=comment, where=where, edits=edited_from, fields=fields
            )
        decision = _decide(locked, reviewer, Verdict.APPROVED, comment, where, edited_from=edited_from)
        locked.next_attempt_at = timezone.now()
        return lifecycle.transition(
            locked,
            "approve",
            actor=user_actor(reviewer),
            where=where,
            decision=decision,
            # The record holds what was decided, not only that it was: the comment, the edits, the args.
            data={
                "edited": bool(edited_from),
                "comment": comment,
                "edits": edited_from or [],
                "args": locked.args,
                **({"approvals": given} if locked.approvals_required > 1 else {}),
            },
            fields=[*fields, "next_attempt_at"],
        )

    return _on_pending(proposal.pk, "approved", change)


def _end(
    proposal: Proposal, reviewer: User, reason: str, where: Where, verdict: Verdict, required: str
) -> Proposal:
    """A rejection or a request for changes: it ends the pending proposal at once, whatever approvals it
    had (four-eyes, pending only, a reason required, audited)."""
    require_reviewer(proposal, reviewer)
    reason = (reason or "").strip()
    if not reason_given(reason):
        raise errors.DomainError(required, errors=[{"loc": ["reason"], "msg": "required", "type": "missing"}])
    changes = verdict == Verdict.CHANGES_REQUESTED

    def change(locked: Proposal) -> Proposal:
        rules.require_review_group(reviewer, locked)
        decision = _decide(locked, reviewer, verdict, reason, where)
        return lifecycle.transition(
            locked,
            "request_changes" if changes else "reject",
            actor=user_actor(reviewer),
            where=where,
            decision=decision,
            data={"reason": reason},
            reason=lifecycle.CHANGES_REQUESTED_REASON.format(reason=reason) if changes else None,
        )

    return _on_pending(proposal.pk, verdict, change)


def proposal_reject(*, proposal: Proposal, reviewer: User, reason: str, where: Where) -> Proposal:
    return _end(proposal, reviewer, reason, where, Verdict.REJECTED, errors.REASON_REQUIRED)


def proposal_request_changes(*, proposal: Proposal, reviewer: User, reason: str, where: Where) -> Proposal:
    """Ask the agent for a corrected call: final for this proposal (``changes_requested``), under the same
    rules as a rejection; the reason reaches the agent in the API's decision, the ``proposal.decided``
    webhook and MCP's ``get_proposal``."""
    return _end(proposal, reviewer, reason, where, Verdict.CHANGES_REQUESTED, errors.CHANGES_REASON_REQUIRED)


def proposal_cancel(*, proposal: Proposal, agent: AgentCredential, where: Where) -> Proposal:
    if proposal.agent_id != agent.pk:
        raise errors.NotAllowed(errors.NOT_THE_PROPOSER)

    def change(locked: Proposal) -> Proposal:
        return lifecycle.transition(locked, "cancel", actor=agent_actor(agent), where=where)

    return _on_pending(proposal.pk, "cancelled", change)


@transaction.atomic
def agent_deactivate(*, agent: AgentCredential, by: User | None, where: Where) -> int:
    """Revoke an agent: its credential stops working, and its pending proposals are cancelled in the same
    transaction (each audited; no webhook: the agent is no longer one to tell). Returns how many were
    cancelled. The admin's "is_active" checkbox comes here too. Proposals already approved are refused at
    their commit (``_claim``), and an approval that raced this one is refused by ``proposal_approve``."""
    actor = user_actor(by) if by is not None else audit.SYSTEM
    locked_agent = (
        AgentCredential.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=agent.pk)
    )
    was_active = locked_agent.is_active
    if was_active:
        locked_agent.is_active = False
        locked_agent.save(update_fields=["is_active"])
    agent.is_active = False
    audit.record(
        tenant=locked_agent.tenant.slug,
        actor=actor,
        action="agent.deactivated",
        where=where,
        subject_type="agent",
        subject_id=str(locked_agent.pk),
        data={"name": locked_agent.name, "was_active": was_active},
    )
    cancelled = 0
    pending = Proposal.objects.filter(agent=locked_agent, status=Status.PENDING).values_list("pk", flat=True)
    for pk in list(pending):
        locked = _locked(pk)
        if locked.status != Status.PENDING:
            continue
        lifecycle.transition(locked, "revoke", actor=actor, where=where, data={"reason": "agent_deactivated"})
        cancelled += 1
    return cancelled


def _expire(proposal: Proposal) -> None:
    """Fail-closed: a pending proposal past its time becomes expired (never rejected). Caller holds the lock."""
    lifecycle.transition(proposal, "expire", actor=audit.SYSTEM, where=audit.WORKER)


def proposal_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    ids = list(
        Proposal.objects.filter(status=Status.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    count = 0
    for pk in ids:
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.PENDING and locked.expires_at <= now:
                _expire(locked)
                count += 1
    return count
