"""The only place a proposal's status changes. Every change writes its audit event in the same transaction.

Plain functions, keyword-only arguments (HackSoft's styleguide): ``proposal_submit``,
``proposal_approve``, ``proposal_reject``, ``proposal_cancel``, ``proposal_commit``,
plus the worker's housekeeping (``proposal_expire_due``, ``commits_redispatch``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from adapters import breaker, connections, http, policy, ratelimit, registry
from adapters import errors as adapter_errors
from approvals import errors, outbox, selectors, webhooks
from approvals.auditlog import remember_locked
from approvals.models import (
    AgentCredential,
    Decision,
    Proposal,
    Receipt,
    SagaStep,
    Status,
    ToolPolicy,
    Verdict,
)
from audit import services as audit
from audit.models import AuditEvent
from audit.services import Actor, Where

logger = logging.getLogger(__name__)
# A commit that met Redis unavailable (breaker or rate-limit state) is tried again this many seconds later.
REDIS_RETRY_SECONDS = 5



def agent_actor(agent: AgentCredential) -> Actor:
    return Actor(type="agent", id=str(agent.pk), label=agent.name)


def user_actor(user: User) -> Actor:
    return Actor(type="user", id=str(user.pk), label=user.get_username())


def derive_idempotency_key(*, tool: str, args: dict[str, Any], agent: AgentCredential, on_behalf_of: Any) -> str:
    """Contract 3: sha256 of (tool, normalized args, agent, on_behalf_of) when the agent sends no key."""
    material = json.dumps(
        [tool, args, agent.pk, getattr(on_behalf_of, "pk", None)], sort_keys=True, separators=(",", ":"), default=str
    )
    return "derived-" + hashlib.sha256(material.encode()).hexdigest()


def agent_policy_rules(agent: AgentCredential) -> tuple[policy.PolicyRule, ...]:
    """The enabled rules that may apply to this agent (its own and its tenant's), as the engine's plain data.
    Read on every call, so an admin's edit applies to the next request."""
    rules = ToolPolicy.objects.filter(
        Q(agent=agent) | Q(agent__isnull=True), tenant_id=agent.tenant_id, enabled=True
    ).order_by("pk")
    return tuple(
        policy.PolicyRule(
            name=rule.name,
            tool=rule.tool,
            agent=agent.name if rule.agent_id else "",
            allowed_fields=tuple(rule.allowed_fields or ()),
            max_per_hour=rule.max_per_hour,
            max_items=rule.max_items,
            refuse_cards=rule.refuse_card_numbers,
            risk_override=rule.risk_override or None,  # type: ignore[arg-type]
            allow_slack_markup=rule.allow_slack_markup,
        )
        for rule in rules
    )


def edit_context(agent: AgentCredential) -> registry.Context:
    """The context a reviewer's edit is checked in: the agent's contract and policy, without its hourly
    limit (that limit is the agent's, and the proposal under review already counts towards it)."""
    return replace(agent_context(agent), recent_count=None)


def agent_context(agent: AgentCredential) -> registry.Context:
    def recent_count(tool: str, seconds: int) -> int:
        # Every proposal counts, whatever became of it: a rejected one took a reviewer's time too. So does a
        # multi-step proposal with a step that runs this tool (a workflow's Slack post is a Slack post).
        since = timezone.now() - timedelta(seconds=seconds)
        return Proposal.objects.filter(agent=agent, tool__in=_tools_running(tool), created_at__gt=since).count()

    return registry.Context(
        tenant=agent.tenant.slug,
        agent=agent.name,
        allowed_tools=tuple(agent.allowed_tools or ()),
        policy=agent_policy_rules(agent),
        recent_count=recent_count,
    )


def _tools_running(tool: str) -> list[str]:
    """``tool`` and every multi-step tool one of whose steps runs under it."""
    return [tool, *(t.name for t in registry.tools() if any(step.tool == tool for step in t.steps))]


# --- the submission budget -------------------------------------------------------------------------------

SUBMISSION_BUDGET = "submissions"
SUBMISSIONS_EXCEEDED = (
    "Too many submissions from this agent ({burst} at once, then {rate:g} a second, refused ones included); "
    "try again in {retry_after} seconds."
)


def _take_submission(agent: AgentCredential) -> None:
    """Every submission costs its agent a token, before any work is done on its body, and whether it is then
    accepted, replayed or refused: a refusal (a 256 KB body of tags, a policy denial) is bounded work, but
    unbounded in number it is not. A token bucket in Redis (adapters.ratelimit), shared by every process.
    Redis unreachable: the submission goes on (intake must not stop with the budget's store; the contract
    and the hourly policy still hold), and the outage is logged."""
    rate, burst = float(settings.ACME_SUBMIT_RATE), int(settings.ACME_SUBMIT_BURST)
    try:
        wait = ratelimit.acquire(f"submit:agent:{agent.pk}", rate, burst)
    except redis.RedisError:
        logger.warning("submission budget unavailable (Redis); submission of agent %s not counted", agent.pk)
        return
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise adapter_errors.RateLimited(
            policy=SUBMISSION_BUDGET, check=SUBMISSION_BUDGET, retry_after=retry_after,
            detail=SUBMISSIONS_EXCEEDED.format(burst=burst, rate=rate, retry_after=retry_after),
        )


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


def _is_reviewer(user: User, tenant_id: int) -> bool:
    # The scope the request already read to find the proposal (read once per user object, i.e. per request).
    return tenant_id in selectors.PersonScope.of(user).review


# --- submit --------------------------------------------------------------------------------------------


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
            errors=[{"loc": ["tool"], "msg": f"{tool} is a read tool: call it directly, it needs no proposal", "type": "read_tool"}]
        )
    key = idempotency_key or derive_idempotency_key(
        tool=tool, args=prepared.args, agent=agent, on_behalf_of=on_behalf_of
    )
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
            proposal = Proposal.objects.create(
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
            )
            _audit_proposal(proposal, actor=agent_actor(agent), action="proposal.submitted", where=where)
    except adapter_errors.RateLimited as limited:
        existing = _replay(agent=agent, key=key, args_hash=prepared.args_hash, tool=tool, on_behalf_of=on_behalf_of)
        return _replay_or_refuse(existing, limited, agent=agent, tool=tool, where=where)
    except IntegrityError:
        # The key exists (an earlier or a concurrent submission): answer as a replay of it, or 409.
        existing = _replay(agent=agent, key=key, args_hash=prepared.args_hash, tool=tool, on_behalf_of=on_behalf_of)
        if existing is None:
            raise
        return Submitted(existing, created=False)
    return Submitted(proposal, created=True)


def _replay_or_refuse(
    replay: Proposal | None, limited: adapter_errors.RateLimited, *, agent: AgentCredential, tool: str, where: Where
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
    key = key or derive_idempotency_key(tool=tool, args=normalized, agent=agent, on_behalf_of=on_behalf_of)
    return _replay(agent=agent, key=key, args_hash=registry.args_hash(normalized), tool=tool,
                   on_behalf_of=on_behalf_of)


def _replay(
    *, agent: AgentCredential, key: str, args_hash: str, tool: str, on_behalf_of: User | None
) -> Proposal | None:
    """The agent's own proposal under ``key``. Keys are the agent's: another agent of the tenant that sends
    the same key makes its own proposal, and never learns of (or reads back) this one."""
    existing = Proposal.objects.select_related("tenant").filter(agent=agent, idempotency_key=key).first()
    if existing is None:
        return None
    # The args as approved (a reviewer may have edited them) or as this agent submitted them: either way the
    # same request again, answered with the proposal it made.
    # For someone else (on_behalf_of) it is another request: whose self-approval the proposal guards against
    # is part of what the key stands for.
    same_args = args_hash in (existing.args_hash, existing.submitted_args_hash or existing.args_hash)
    same_person = existing.on_behalf_of_id == (on_behalf_of.pk if on_behalf_of is not None else None)
    if not same_args or not same_person or existing.tool != tool:
        raise errors.IdempotencyConflict(errors.KEY_REUSED, proposal=str(existing.pk))
    return existing


# --- decide --------------------------------------------------------------------------------------------


def _locked(proposal_id: Any) -> Proposal:
    """The proposal under a row lock, with its tenant and agent read (not locked).

    ``of=("self",)``: a plain ``FOR UPDATE`` over the join would lock the tenant's and the agent's rows as
    well, and every submission of the tenant (whose foreign-key check takes ``FOR KEY SHARE`` on the tenant)
    would wait for each decision and commit in flight. ``no_key``: the key never changes here, so rows that
    refer to the proposal (decisions, receipts) can be inserted beside the lock."""
    return remember_locked(
        Proposal.objects.select_for_update(of=("self",), no_key=True).select_related("tenant", "agent").get(pk=proposal_id)
    )


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
            errors.INVALID_STATE.format(status=Status.EXPIRED, action=action, allowed="pending"), status=Status.EXPIRED
        ) from None


def require_reviewer(proposal: Proposal, reviewer: User) -> None:
    """Raise NotAllowed unless ``reviewer`` may decide on ``proposal``: a reviewer or admin of its tenant,
    and not the person it was made on behalf of."""
    if not _is_reviewer(reviewer, proposal.tenant_id):
        raise errors.NotAllowed(errors.NOT_A_REVIEWER)
    if proposal.on_behalf_of_id is not None and proposal.on_behalf_of_id == reviewer.pk:
        raise errors.NotAllowed(errors.SELF_APPROVAL, error="self_approval_forbidden")


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    fields = sorted(set(before) | set(after))
    return [
        {"field": f, "before": before.get(f), "after": after.get(f)} for f in fields if before.get(f) != after.get(f)
    ]


def _decide(
    locked: Proposal, reviewer: User, verdict: Verdict, reason: str, where: Where,
    edited_from: list[dict[str, Any]] | None = None,
) -> Decision:
    # No savepoint: under the row lock a pending proposal has no decision, so the unique constraint cannot
    # fire here. Where row locks are not available it is the backstop; its error ends the caller's
    # transaction (nothing of this decision is kept) and answers like any decision that came second.
    try:
        with transaction.atomic(savepoint=False):
            decision = Decision.objects.create(
                proposal=locked,
                reviewer=reviewer,
                verdict=verdict,
                reason=reason,
                args_hash=locked.args_hash,
                edited_from=edited_from,
                channel=where.channel if where.channel in ("api", "web") else "cli",
                ip=where.ip or None,
                user_agent=where.user_agent[:256],
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
) -> Proposal:
    """Record the approval of the exact args (edited ones when ``args`` is given) and stage the commit.

    An edit is previewed again (for an update, a fresh read of the target). That fresh read must show the
    target as the reviewer saw it: ``seen_snapshot`` (the browser's edit preview), else the proposal's
    stored preview (what an API reviewer saw). Otherwise TargetChanged: approving would adopt a state of
    the target nobody reviewed, and the commit's staleness check would compare against it."""
    require_reviewer(proposal, reviewer)
    edited = None
    if args is not None:
        # The edit goes through the same contract and policy as the agent's submission.
        agent = AgentCredential.objects.select_related("tenant").get(pk=proposal.agent_id)
        edited = registry.prepare(proposal.tool, args, edit_context(agent))

    def change(locked: Proposal) -> Proposal:
        if not locked.agent.is_active:
            raise errors.AgentRevoked(errors.AGENT_REVOKED.format(agent=locked.agent.name), status=locked.status)
        edited_from = None
        if edited is not None and edited.args_hash != locked.args_hash:
            seen = seen_snapshot if seen_snapshot is not None else (locked.preview or {}).get("snapshot") or {}
            if (edited.preview.snapshot or {}) != seen:
                raise errors.TargetChanged(errors.TARGET_CHANGED)
            edited_from = _changes(locked.args, edited.args)
            locked.args = edited.args
            locked.args_hash = edited.args_hash
            locked.risk = edited.risk
            locked.preview = edited.preview.as_dict()
        decision = _decide(locked, reviewer, Verdict.APPROVED, comment, where, edited_from=edited_from)
        locked.status = Status.APPROVED
        locked.status_reason = "Approved; waiting for a worker to commit it."
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["status", "status_reason", "args", "args_hash", "risk", "preview",
                                   "next_attempt_at", "updated_at"])
        _audit_proposal(
            locked,
            actor=user_actor(reviewer),
            action="proposal.approved",
            where=where,
            decision=decision,
            data={"edited": bool(edited_from), "comment": bool(comment)},
        )
        outbox.stage_commit(locked.pk)
        webhooks.stage(locked, "proposal.decided")
        return locked

    return _on_pending(proposal.pk, "approved", change)


def proposal_reject(*, proposal: Proposal, reviewer: User, reason: str, where: Where) -> Proposal:
    require_reviewer(proposal, reviewer)
    reason = (reason or "").strip()
    if not reason:
        raise errors.DomainError(errors.REASON_REQUIRED, errors=[{"loc": ["reason"], "msg": "required", "type": "missing"}])

    def change(locked: Proposal) -> Proposal:
        decision = _decide(locked, reviewer, Verdict.REJECTED, reason, where)
        locked.status = Status.REJECTED
        locked.status_reason = ""
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        _audit_proposal(locked, actor=user_actor(reviewer), action="proposal.rejected", where=where, decision=decision)
        webhooks.stage(locked, "proposal.decided")
        return locked

    return _on_pending(proposal.pk, "rejected", change)


def proposal_cancel(*, proposal: Proposal, agent: AgentCredential, where: Where) -> Proposal:
    if proposal.agent_id != agent.pk:
        raise errors.NotAllowed(errors.NOT_THE_PROPOSER)
    def change(locked: Proposal) -> Proposal:
        locked.status = Status.CANCELLED
        locked.save(update_fields=["status", "updated_at"])
        _audit_proposal(locked, actor=agent_actor(agent), action="proposal.cancelled", where=where)
        return locked

    return _on_pending(proposal.pk, "cancelled", change)


AGENT_REVOKED_REASON = "Cancelled: its agent was deactivated."


@transaction.atomic
def agent_deactivate(*, agent: AgentCredential, by: User | None, where: Where) -> int:
    """Revoke an agent: its credential stops working, and its pending proposals are cancelled in the same
    transaction (each audited; no webhook: the agent is no longer one to tell). Returns how many were
    cancelled. The admin's "is_active" checkbox comes here too. Proposals already approved are refused at
    their commit (``_claim``), and an approval that raced this one is refused by ``proposal_approve``."""
    actor = user_actor(by) if by is not None else audit.SYSTEM
    locked_agent = AgentCredential.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=agent.pk)
    was_active = locked_agent.is_active
    if was_active:
        locked_agent.is_active = False
        locked_agent.save(update_fields=["is_active"])
    agent.is_active = False
    audit.record(tenant=locked_agent.tenant.slug, actor=actor, action="agent.deactivated", where=where,
                 subject_type="agent", subject_id=str(locked_agent.pk),
                 data={"name": locked_agent.name, "was_active": was_active})
    cancelled = 0
    pending = Proposal.objects.filter(agent=locked_agent, status=Status.PENDING).values_list("pk", flat=True)
    for pk in list(pending):
        locked = _locked(pk)
        if locked.status != Status.PENDING:
            continue
        locked.status = Status.CANCELLED
        locked.status_reason = AGENT_REVOKED_REASON
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        _audit_proposal(locked, actor=actor, action="proposal.cancelled", where=where,
                        data={"reason": "agent_deactivated"})
        cancelled += 1
    return cancelled


def _expire(proposal: Proposal) -> None:
    """Fail-closed: a pending proposal past its time becomes expired (never rejected). Caller holds the lock."""
    proposal.status = Status.EXPIRED
    proposal.status_reason = "No decision before it expired."
    proposal.save(update_fields=["status", "status_reason", "updated_at"])
    _audit_proposal(proposal, actor=audit.SYSTEM, action="proposal.expired", where=audit.WORKER)
    webhooks.stage(proposal, "proposal.expired")


def proposal_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    ids = list(
        Proposal.objects.filter(status=Status.PENDING, expires_at__lte=now).order_by("expires_at").values_list("pk", flat=True)[:limit]
    )
    count = 0
    for pk in ids:
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.PENDING and locked.expires_at <= now:
                _expire(locked)
                count += 1
    return count


# --- commit --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitResult:
    outcome: str  # "committed" | "noop" | "deferred" | "stale" | "failed"
    proposal_id: str


def _claim(proposal_id: Any) -> tuple[Proposal, Decision, bool] | None:
    """approved → committing under a row lock; also takes over a committing proposal whose lease ran out.
    The flag says whether an earlier run may have sent the write: a takeover (the worker died mid-commit)
    or outbound attempts spent by a run that was deferred, or failed and was requeued."""
    now = timezone.now()
    with transaction.atomic():
        try:
            proposal = _locked(proposal_id)
        except Proposal.DoesNotExist:
            return None
        if proposal.status == Status.COMMITTING and proposal.lease_until and proposal.lease_until > now:
            return None  # another worker holds it
        if proposal.status not in (Status.APPROVED, Status.COMMITTING):
            return None
        if proposal.status == Status.APPROVED and proposal.next_attempt_at and proposal.next_attempt_at > now:
            return None  # deferred (breaker open or rate limit): its own dispatch comes later
        decision = proposal.decisions.filter(verdict=Verdict.APPROVED).order_by("-at").first()
        if not proposal.agent.is_active:
            # Approved before its agent was deactivated (deactivation only cancels pending proposals): the
            # agent's work is withdrawn with its credential, so nothing is sent. No webhook to a revoked agent.
            proposal.status = Status.FAILED
            proposal.status_reason = "Refused: " + errors.AGENT_REVOKED.format(agent=proposal.agent.name)
            proposal.save(update_fields=["status", "status_reason", "updated_at"])
            _audit_proposal(proposal, actor=audit.SYSTEM, action="proposal.commit_refused", where=audit.WORKER,
                            result="denied", decision=decision, data={"reason": "agent_revoked"})
            return None
        actual_hash = registry.args_hash(proposal.args)
        if decision is None or decision.args_hash != proposal.args_hash or actual_hash != proposal.args_hash:
            proposal.status = Status.FAILED
            proposal.status_reason = "Refused: the args differ from what was approved."
            proposal.save(update_fields=["status", "status_reason", "updated_at"])
            _audit_proposal(proposal, actor=audit.SYSTEM, action="proposal.commit_refused", where=audit.WORKER,
                            result="error", decision=decision, data={"reason": "args_hash_mismatch"})
            webhooks.stage(proposal, "proposal.failed")
            return None
        took_over = proposal.status == Status.COMMITTING
        proposal.status = Status.COMMITTING
        proposal.status_reason = "Working on it…"
        proposal.lease_until = now + timedelta(seconds=settings.ACME_COMMIT_LEASE)
        proposal.save(update_fields=["status", "status_reason", "lease_until", "updated_at"])
        _audit_proposal(proposal, actor=audit.SYSTEM, action="proposal.commit_started", where=audit.WORKER,
                        decision=decision, data={"resumed": took_over, "earlier_attempts": proposal.commit_attempts})
        return proposal, decision, took_over or proposal.commit_attempts > 0


def commit_budget() -> float:
    """Seconds a commit's outside calls may take in all: nine tenths of its lease, the rest left for
    recording the outcome before the lease ends."""
    return 0.9 * float(settings.ACME_COMMIT_LEASE)


def proposal_commit(*, proposal_id: Any) -> CommitResult:
    """Commit an approved proposal exactly once. Safe to run twice, concurrently, or after a crash."""
    claimed = _claim(proposal_id)
    if claimed is None:
        return CommitResult("noop", str(proposal_id))
    proposal, decision, resumed = claimed
    try:
        # The outside calls end within the lease the claim took: past it another worker may take the
        # proposal over and send the write again (a Slack message has no idempotency key to stop a second
        # post). A wait the server asks for that the lease cannot cover is a deferral, not a failure.
        with http.deadline(commit_budget()):
            if registry.get(proposal.tool).steps:
                outcome = _run_steps(proposal)
            else:
                outcome = registry.execute(
                    proposal.tool,
                    proposal.args,
                    idempotency_key=proposal.crm_idempotency_key,
                    tenant=proposal.tenant.slug,
                    snapshot=(proposal.preview or {}).get("snapshot") or {},
                    resumed=resumed,
                )
    except SagaFailed as failed:
        return _finish_unsuccessful(proposal, decision, Status.FAILED, str(failed), attempts=1, result="error")
    except adapter_errors.Deferred as deferred:
        # Attempts sent before the wait count towards the budget, and make the next run a resumed one.
        return _finish_deferred(proposal, decision, deferred, attempts=deferred.attempts)
    except adapter_errors.StaleTarget as stale:
        return _finish_unsuccessful(proposal, decision, Status.STALE, str(stale), attempts=1, result="stale")
    except adapter_errors.TransientFailure as failure:
        waited = _wait_for_breaker(proposal, failure)
        if waited is not None:
            return _finish_deferred(proposal, decision, waited, attempts=failure.attempts)
        return _finish_unsuccessful(proposal, decision, Status.FAILED, str(failure), attempts=failure.attempts,
                                    result="error")
    except adapter_errors.PermanentFailure as failure:
        return _finish_unsuccessful(proposal, decision, Status.FAILED, str(failure), attempts=failure.attempts,
                                    result="error")
    except redis.RedisError as exc:
        # Our own shared state (breaker, rate limits) was unreachable, perhaps after the outside call went
        # through: nothing says the call was refused. Retry later with the same idempotency key (which never
        # doubles a write) instead of dead-lettering an approval that may already be done.
        logger.warning("commit of %s met Redis unavailable (%s); retrying later", proposal.pk, type(exc).__name__)
        return _finish_deferred(proposal, decision, adapter_errors.Deferred(
            reason="redis_unavailable", retry_at=time.time() + REDIS_RETRY_SECONDS))
    except Exception as exc:  # an unexpected error must not leave the proposal looking in progress
        logger.exception("commit of %s crashed", proposal.pk)
        return _finish_unsuccessful(proposal, decision, Status.FAILED, f"Internal error ({type(exc).__name__}).",
                                    attempts=1, result="error")
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if locked.status == Status.COMMITTED:
            return CommitResult("noop", str(proposal.pk))
        Receipt.objects.create(
            proposal=locked,
            system=outcome.system,
            external_id=outcome.external_id,
            external_url=outcome.url,
            response_summary={**outcome.summary, "reconciled": True} if outcome.reconciled
            else outcome.summary,
            attempts=outcome.attempts,
            args_hash=locked.args_hash,
        )
        locked.status = Status.COMMITTED
        locked.status_reason = ""
        locked.lease_until = None
        locked.commit_attempts += outcome.attempts
        locked.save(update_fields=["status", "status_reason", "lease_until", "commit_attempts", "updated_at"])
        audit.append(
            _proposal_event(locked, actor=audit.SYSTEM, action="outbound.call", where=audit.WORKER, decision=decision,
                            data={"system": outcome.system, "attempts": outcome.attempts,
                                  "external_id": outcome.external_id, "reconciled": outcome.reconciled}),
            _proposal_event(locked, actor=audit.SYSTEM, action="proposal.committed", where=audit.WORKER,
                            decision=decision, data={"system": outcome.system, "external_id": outcome.external_id}),
        )
        webhooks.stage(locked, "proposal.committed")
    return CommitResult("committed", str(proposal.pk))


class SagaFailed(Exception):
    """A step of a multi-step proposal failed for good; earlier writes were compensated."""

    def __init__(self, step: str, error: str, ran: list[str], undone: list[str], not_undone: list[str]) -> None:
        parts = [f"Step '{step}' failed: {error}", f"Ran: {', '.join(ran) or 'nothing'}",
                 f"Undone: {', '.join(undone) or 'nothing to undo'}"]
        if not_undone:
            parts.append(f"Could not undo: {', '.join(not_undone)} (needs a person)")
        super().__init__(". ".join(parts) + ".")


def _run_steps(proposal: Proposal) -> registry.Outcome:
    """Run a multi-step tool: each step's result is persisted as it completes, so a crash resumes at the next
    step; a step that fails for good has the earlier writes compensated, newest first."""
    tool = registry.get(proposal.tool)
    done = {s.index: s for s in SagaStep.objects.filter(proposal=proposal)}
    results = {s.name: s.result for s in done.values() if s.state == SagaStep.State.DONE}
    for index, step in enumerate(tool.steps):
        if index in done:
            continue
        try:
            result = registry.run_step(proposal.tool, proposal.args, index, results,
                                       idempotency_key=f"{proposal.crm_idempotency_key}-step-{index}",
                                       tenant=proposal.tenant.slug,
                                       snapshot=(proposal.preview or {}).get("snapshot") or {})
        except (adapter_errors.TransientFailure, adapter_errors.PermanentFailure, adapter_errors.StaleTarget) as exc:
            undone, not_undone = _compensate(proposal, before=index)
            raise SagaFailed(step.name, str(exc), [s.name for s in tool.steps[:index]], undone, not_undone) from exc
        with transaction.atomic():
            SagaStep.objects.create(proposal=proposal, index=index, name=step.name, state=SagaStep.State.DONE,
                                    result=result)
            _audit_proposal(proposal, actor=audit.SYSTEM, action="saga.step_done", where=audit.WORKER,
                            data={"step": step.name, "index": index})
        results[step.name] = result
    return registry.Outcome(system=tool.system, external_id=str(proposal.pk),
                            summary={"steps": [{"name": s.name, "result": results.get(s.name)} for s in tool.steps]})


def _compensate(proposal: Proposal, *, before: int) -> tuple[list[str], list[str]]:
    undone: list[str] = []
    not_undone: list[str] = []
    steps = SagaStep.objects.filter(proposal=proposal, index__lt=before, state=SagaStep.State.DONE).order_by("-index")
    for saga_step in steps:
        try:
            compensated = registry.compensate_step(proposal.tool, proposal.args, saga_step.index, saga_step.result,
                                                   tenant=proposal.tenant.slug)
        except Exception as exc:
            saga_step.state, saga_step.error = SagaStep.State.COMPENSATION_FAILED, str(exc)[:1000]
            not_undone.append(saga_step.name)
        else:
            if not compensated:
                continue  # a read: nothing to undo
            saga_step.state = SagaStep.State.COMPENSATED
            undone.append(saga_step.name)
        with transaction.atomic():
            saga_step.save(update_fields=["state", "error", "updated_at"])
            _audit_proposal(proposal, actor=audit.SYSTEM, action="saga.step_compensated", where=audit.WORKER,
                            result="ok" if saga_step.state == SagaStep.State.COMPENSATED else "error",
                            data={"step": saga_step.name, "index": saga_step.index})
    return undone, not_undone


def _wait_for_breaker(proposal: Proposal, failure: adapter_errors.TransientFailure) -> adapter_errors.Deferred | None:
    """A commit whose retries ran out while its downstream's breaker opened (its own failures may have
    tripped it) met an outage, like the commits that will find the breaker open after it: it waits for
    the breaker too, instead of being the one dead letter of the outage. Within a budget of attempts
    (``ACME_COMMIT_MAX_ATTEMPTS``), so a downstream that never recovers still ends in the dead letters."""
    if proposal.commit_attempts + failure.attempts >= settings.ACME_COMMIT_MAX_ATTEMPTS:
        return None
    try:
        # The breaker of the proposal's tenant's connection (its own CRM has its own breaker).
        if breaker.state(connections.breaker_key(proposal.tenant.slug, registry.get(proposal.tool).system)) != "open":
            return None
    except redis.RedisError:
        return None
    # The breaker half-opens within a cooldown of now; a retry that comes too early is deferred again.
    return adapter_errors.Deferred(reason="breaker_open", retry_at=time.time() + float(settings.ACME_BREAKER_COOLDOWN))


def _finish_deferred(
    proposal: Proposal, decision: Decision, deferred: adapter_errors.Deferred, *, attempts: int = 0
) -> CommitResult:
    """An open breaker or a rate limit: not a failure; back to approved, retried when it may pass.
    ``attempts``: outbound attempts this run spent before it had to wait (they count towards the budget)."""
    retry_at = datetime.fromtimestamp(deferred.retry_at, tz=timezone.get_current_timezone())
    reason = {
        "breaker_open": "Waiting: the {system} circuit breaker is open until {at:%H:%M:%S} UTC.",
        "rate_limited": "Waiting: rate limit for {system}; next try at {at:%H:%M:%S} UTC.",
    }.get(deferred.reason, "Waiting until {at:%H:%M:%S} UTC.")
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if locked.status != Status.COMMITTING:
            return CommitResult("noop", str(proposal.pk))
        locked.status = Status.APPROVED
        locked.status_reason = reason.format(system=registry.get(locked.tool).system, at=retry_at)
        locked.lease_until = None
        locked.next_attempt_at = retry_at
        locked.commit_attempts += attempts
        locked.save(update_fields=["status", "status_reason", "lease_until", "next_attempt_at", "commit_attempts",
                                   "updated_at"])
        _audit_proposal(locked, actor=audit.SYSTEM, action="proposal.commit_deferred", where=audit.WORKER,
                        result="deferred", decision=decision, data={"reason": deferred.reason, "attempts": attempts})
        outbox.stage_commit(locked.pk, available_at=retry_at)
    return CommitResult("deferred", str(proposal.pk))


def _finish_unsuccessful(
    proposal: Proposal, decision: Decision, status: Status, reason: str, *, attempts: int, result: str
) -> CommitResult:
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if locked.status != Status.COMMITTING:
            return CommitResult("noop", str(proposal.pk))
        locked.status = status
        locked.status_reason = reason[:2000]
        locked.lease_until = None
        locked.commit_attempts += attempts
        locked.save(update_fields=["status", "status_reason", "lease_until", "commit_attempts", "updated_at"])
        audit.append(
            _proposal_event(locked, actor=audit.SYSTEM, action="outbound.call", where=audit.WORKER, result=result,
                            decision=decision, data={"attempts": attempts, "error": reason[:500]}),
            _proposal_event(locked, actor=audit.SYSTEM, action=f"proposal.{status}", where=audit.WORKER,
                            result=result, decision=decision),
        )
        webhooks.stage(locked, f"proposal.{status}")
    return CommitResult(str(status), str(proposal.pk))


def commits_redispatch(*, now: datetime | None = None, grace: int = 30, limit: int = 200) -> int:
    """Re-stage commits that should be running but are not: a lease that ran out (the worker died) or an
    approval whose job was lost (e.g. Redis restarted without persistence). The claim makes repeats harmless."""
    now = now or timezone.now()
    expired_leases = Proposal.objects.filter(status=Status.COMMITTING, lease_until__lt=now)
    lost = Proposal.objects.filter(status=Status.APPROVED, next_attempt_at__lt=now - timedelta(seconds=grace))
    ids = list(expired_leases.values_list("pk", flat=True)[:limit]) + list(lost.values_list("pk", flat=True)[:limit])
    for pk in ids:
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.APPROVED:
                # Push the next look further out so a slow queue is not flooded with duplicates.
                locked.next_attempt_at = now
                locked.save(update_fields=["next_attempt_at", "updated_at"])
            outbox.stage_commit(locked.pk)
    return len(ids)


# --- dead letters --------------------------------------------------------------------------------------


def proposal_requeue(*, proposal: Proposal, admin: User, where: Where) -> Proposal:
    """failed → approved, and stage the commit again (an admin's decision, audited). The approval it rests
    on is unchanged: the same args, the same hash, the same idempotency key towards the outside system."""
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if locked.status != Status.FAILED or locked.discarded_at is not None:
            raise errors.InvalidTransition(
                errors.INVALID_STATE.format(status=locked.status, action="requeued", allowed="failed and not discarded")
            )
        locked.status = Status.APPROVED
        locked.status_reason = "Requeued by an admin; waiting for a worker."
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["status", "status_reason", "next_attempt_at", "updated_at"])
        decision = locked.decisions.filter(verdict=Verdict.APPROVED).first()
        _audit_proposal(locked, actor=user_actor(admin), action="proposal.requeued", where=where, decision=decision)
        outbox.stage_commit(locked.pk)
    return locked


def proposal_discard(*, proposal: Proposal, admin: User, where: Where) -> Proposal:
    """Take a failed commit out of the dead letters for good; it stays failed."""
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if locked.status != Status.FAILED or locked.discarded_at is not None:
            raise errors.InvalidTransition(
                errors.INVALID_STATE.format(status=locked.status, action="discarded", allowed="failed and not discarded")
            )
        locked.discarded_at = timezone.now()
        locked.save(update_fields=["discarded_at", "updated_at"])
        _audit_proposal(locked, actor=user_actor(admin), action="proposal.discarded", where=where)
    return locked


# --- intake backpressure -------------------------------------------------------------------------------


def commit_backlog() -> int:
    """Commits waiting: the RQ queue's length, plus outbox rows not yet handed off (Redis may be down)."""
    from approvals import jobs
    from approvals.models import OutboxMessage

    waiting = OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.COMMIT, dispatched_at__isnull=True, available_at__lte=timezone.now()
    ).count()
    try:
        waiting += jobs.commit_queue_depth()
    except Exception:  # Redis unreachable: the outbox count stands alone
        logger.warning("commit queue depth unavailable")
    return waiting


def intake_allowed(*, tool: str) -> float | None:
    """None when a submission may proceed; else the seconds to wait (low-priority tools under backpressure)."""
    if tool not in settings.ACME_LOW_PRIORITY_TOOLS:
        return None
    if commit_backlog() <= settings.ACME_BACKPRESSURE_DEPTH:
        return None
    return float(settings.ACME_BACKPRESSURE_RETRY_AFTER)
