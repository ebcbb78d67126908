"""A proposal's lifecycle: the transitions as data, and ``transition()``, the only code that sets a status.

::

                        reject ──> rejected           (webhook proposal.decided)
                        request_changes ──> changes_requested   (proposal.decided; the agent resubmits)
                      ┌─ cancel / revoke ──> cancelled
    (submit) pending ─┼─ expire ──> expired           (webhook proposal.expired)
                      └─ approve ──> approved ◄───────────────────────────────────────┐  (proposal.decided)
                                        │  ▲                                          │
                                  claim │  │ defer (breaker open, rate limit, Redis)  │ requeue (an admin)
                                        ▼  │                                          │
                    claim (lease out) ─> committing ─ commit ──> committed            │  (proposal.committed)
                                        │      └───── fail ────> failed ──────────────┘  (proposal.failed)
                                        │      └───── go_stale > stale                   (proposal.stale)
          approved or committing ── refuse_mismatch / refuse_revoked ──> failed          (proposal.failed / none)

``claim`` also takes over a committing proposal whose lease ran out (the worker died; a live worker renews
it), and raises the fencing token: ``commit``, ``defer``, ``fail`` and ``go_stale`` are applied only by the
claim that holds it (``services.lease``). A failed commit not
discarded is a *dead letter* (``is_dead_letter``): an admin requeues it or discards it (``discarded_at``;
it stays failed, so discarding is not a transition). ``LIVE``: the statuses that still change by
themselves or by a person; the others are final.

``transition(proposal, name, ...)`` does, in the caller's transaction and under the caller's row lock:
check the source → set status (and ``status_reason``) → save → stage the commit (transitions that hand
one to the worker) → stage the agent's webhook and the Slack message's update → append the audit event(s),
last, since appending holds the tenant's chain lock until the transaction ends → signal the agents
waiting on it (``waiting.changed``, after the commit). The caller holds the lock
(``services.base._locked``) and makes any conditional check first (e.g. "still committing?" after a long
outside call): the check and the change happen under one ``SELECT … FOR UPDATE``, as before.

Why a table and not django-fsm-2: its ``@transition`` methods live on the model and its side effects run
in ``post_transition`` signals, where this project keeps no behaviour (services hold it, the audit row is
written in the same transaction as the change, webhooks are staged in an outbox); its concurrency help is
optimistic (``ConcurrentTransitionMixin``: a conditional ``UPDATE``) while ours is a row lock taken
before the outside call's outcome is recorded; and ``FSMField`` would change the model field. A dict of
frozen dataclasses and one function (~60 lines) say the same and keep the order of writes explicit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from approvals import errors, outbox, waiting, webhooks
from approvals.models import Decision, Proposal, Status
from approvals.slack import notify as slack_notify
from approvals.trail import NOT_IN_TRAIL as NOT_IN_TRAIL  # re-exported: what the trail keeps lives in trail
from approvals.trail import SUBMITTED_FIELDS as SUBMITTED_FIELDS
from approvals.trail import proposal_event, receipt_data
from audit import services as audit
from audit.prepared_writes import PreparedUpdate
from audit.services import Actor, Where

# Statuses that still change; the rest are final (the reviewer page stops polling them).
LIVE = frozenset({Status.PENDING, Status.APPROVED, Status.COMMITTING})

# Reasons the lifecycle writes into ``status_reason`` (for people; code asks ``is_waiting``).
APPROVED_REASON = "Approved; waiting for a worker to commit it."
AGENT_REVOKED_REASON = "Cancelled: its agent was deactivated."
EXPIRED_REASON = "No decision before it expired."
# Read by agents (API status_reason, webhook) as well as people: says what to do next.
CHANGES_REQUESTED_REASON = (
    "A reviewer asked for changes instead of approving: {reason} Nothing was done and this proposal is closed. "
    "Submit a corrected call (the args changed as asked) under a new Idempotency-Key; resending this one "
    "returns this same proposal."
)
CLAIMED_REASON = "Working on it…"
ARGS_MISMATCH_REASON = "Refused: the args differ from what was approved."
REQUEUED_REASON = "Requeued by an admin; waiting for a worker."
# A deferred commit's reason starts with this word, and only a deferral writes it (``defer``).
WAITING = "Waiting"
WAITING_REASONS = {
    "breaker_open": WAITING + ": the {system} circuit breaker is open until {at:%H:%M:%S} UTC.",
    "rate_limited": WAITING + ": rate limit for {system}; next try at {at:%H:%M:%S} UTC.",
}
WAITING_OTHER = WAITING + " until {at:%H:%M:%S} UTC."

_UPDATE = PreparedUpdate(Proposal)


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[Status]
    target: Status
    action: str  # the audit event's action
    webhook: str = ""  # the agent's webhook event, "" for none
    reason: str | None = None  # status_reason written; None leaves it (a caller may pass its own)
    result: str = "ok"  # the audit event's result
    stages_commit: bool = False  # hands a commit to the worker (through the outbox)


_PENDING = frozenset({Status.PENDING})
# Transitions a proposal's Slack message does not show (a worker taking or deferring its commit).
SLACK_SILENT = frozenset({"claim", "defer"})
_CLAIMABLE = frozenset({Status.APPROVED, Status.COMMITTING})
_COMMITTING = frozenset({Status.COMMITTING})

TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        Transition(
            "approve",
            _PENDING,
            Status.APPROVED,
            "proposal.approved",
            "proposal.decided",
            APPROVED_REASON,
            stages_commit=True,
        ),
        Transition("reject", _PENDING, Status.REJECTED, "proposal.rejected", "proposal.decided", ""),
        # Final, like a rejection: the agent is told to submit a corrected call under a new key (the
        # service writes CHANGES_REQUESTED_REASON with the reviewer's reason).
        Transition(
            "request_changes",
            _PENDING,
            Status.CHANGES_REQUESTED,
            "proposal.changes_requested",
            "proposal.decided",
        ),
        Transition("cancel", _PENDING, Status.CANCELLED, "proposal.cancelled"),
        # The agent was deactivated: no webhook, the agent is no longer one to tell.
        Transition("revoke", _PENDING, Status.CANCELLED, "proposal.cancelled", reason=AGENT_REVOKED_REASON),
        Transition(
            "expire", _PENDING, Status.EXPIRED, "proposal.expired", "proposal.expired", EXPIRED_REASON
        ),
        Transition("claim", _CLAIMABLE, Status.COMMITTING, "proposal.commit_started", reason=CLAIMED_REASON),
        Transition("refuse_revoked", _CLAIMABLE, Status.FAILED, "proposal.commit_refused", result="denied"),
        Transition(
            "refuse_mismatch",
            _CLAIMABLE,
            Status.FAILED,
            "proposal.commit_refused",
            "proposal.failed",
            ARGS_MISMATCH_REASON,
            result="error",
        ),
        # The outside write landed. Like every outcome of a commit, recorded only by the claim that still owns
        # the proposal (its fencing token, ``services.lease``): a worker taken over after its lease ran out
        # has its late result discarded and audited; the claim that took over replays the same write.
        Transition("commit", _COMMITTING, Status.COMMITTED, "proposal.committed", "proposal.committed", ""),
        Transition(
            "defer",
            _COMMITTING,
            Status.APPROVED,
            "proposal.commit_deferred",
            result="deferred",
            stages_commit=True,
        ),
        Transition("fail", _COMMITTING, Status.FAILED, "proposal.failed", "proposal.failed", result="error"),
        Transition("go_stale", _COMMITTING, Status.STALE, "proposal.stale", "proposal.stale", result="stale"),
        Transition(
            "requeue",
            frozenset({Status.FAILED}),
            Status.APPROVED,
            "proposal.requeued",
            reason=REQUEUED_REASON,
            stages_commit=True,
        ),
    )
}


# The transitions that make the proposal's ``Decision``: their event says its verdict.
DECIDING = frozenset({"approve", "reject", "request_changes"})


def transition(
    proposal: Proposal,
    name: str,
    *,
    actor: Actor,
    where: Where,
    decision: Decision | None = None,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
    fields: Sequence[str] = (),
    outbound: dict[str, Any] | None = None,
    commit_at: datetime | None = None,
) -> Proposal:
    """Apply transition ``name`` to the locked ``proposal``, in the caller's transaction.

    ``fields``: other fields the caller changed on ``proposal`` and that are saved with the status.
    ``outbound``: the data of an ``outbound.call`` event written just before the transition's own (a
    commit's outside call). ``commit_at``: when a staged commit is due (default now)."""
    spec = TRANSITIONS[name]
    if proposal.status not in spec.sources:
        raise errors.InvalidTransition(
            errors.INVALID_STATE.format(
                status=proposal.status, action=name, allowed=" or ".join(sorted(spec.sources))
            ),
            status=proposal.status,
        )
    proposal.status = spec.target
    update = ["status"]
    text = reason if reason is not None else spec.reason
    if text is not None:
        proposal.status_reason = text
        update.append("status_reason")
    _UPDATE.save(
        proposal, [*update, *fields, "updated_at"]
    )  # proposal.save(update_fields=...), compiled once
    common: dict[str, Any] = {"actor": actor, "where": where, "result": spec.result, "decision": decision}
    events = [proposal_event(proposal, action="outbound.call", data=outbound, **common)] if outbound else []
    # The decision and the receipt this transition records, as their rows say (the trail is their history).
    recorded: dict[str, Any] = {}
    if decision is not None and name in DECIDING:
        recorded["verdict"] = decision.verdict
    if name == "commit":
        recorded["receipt"] = receipt_data(proposal.receipt)  # created with this instance: no query
    if spec.stages_commit:
        outbox.stage_commit(proposal.pk, available_at=commit_at)
    if spec.webhook:
        webhooks.stage(proposal, spec.webhook)
    if name not in SLACK_SILENT:
        slack_notify.stage_sync(proposal)  # its Slack message, if it has one, shows the new state
    # The audit events after the other writes: appending takes the tenant's chain lock until the transaction
    # ends, so one tenant's transitions queue on it for as short a time as possible (same transaction, so
    # the order of these writes is not visible to anyone).
    audit.append(
        *events,
        proposal_event(
            proposal, action=spec.action, data={**recorded, **(data or {})}, fields=fields, **common
        ),
    )
    waiting.changed(proposal.pk)  # agents waiting on it (``?wait=N``) hear of it once this commits
    return proposal


# --- questions the rest of the code asks ------------------------------------------------------------------

# The dead letters as a query: failed commits no admin discarded.
DEAD_LETTERS = Q(status=Status.FAILED, discarded_at__isnull=True)


def is_live(proposal: Proposal) -> bool:
    return proposal.status in LIVE


def is_waiting(proposal: Proposal) -> bool:
    """Approved, and its commit deferred until a downstream may take it (written by ``defer`` only)."""
    return proposal.status == Status.APPROVED and proposal.status_reason.startswith(WAITING)


def is_dead_letter(proposal: Proposal) -> bool:
    return proposal.status == Status.FAILED and proposal.discarded_at is None


def waiting_reason(reason: str, *, system: str, at: datetime) -> str:
    """The ``status_reason`` of a commit deferred for ``reason`` ("breaker_open", "rate_limited", ...)."""
    return WAITING_REASONS.get(reason, WAITING_OTHER).format(system=system, at=at)
