"""Quorum: one reviewer's approval recorded on the proposal's current args, counted against its rule
(``Proposal.approvals_required``; the count itself is ``approvals.rules.counted_approvals``). Called by
``decide.proposal_approve`` under the proposal's row lock, so two approvals at once are counted one after
the other and exactly one of them completes the quorum."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from approvals import errors, rules
from approvals.models import Approval, Proposal
from approvals.services.base import _audit_proposal, user_actor, where_fields
from approvals.slack import notify as slack_notify
from audit.prepared_writes import PreparedInsert
from audit.services import Where

_APPROVAL = PreparedInsert(Approval)  # compiled once (audit.prepared_writes)


def record_approval(locked: Proposal, reviewer: User, comment: str, where: Where) -> int:
    """Record ``reviewer``'s approval of ``locked``'s current args and return how many now count. A second
    approval of the same args by the same person is AlreadyApproved (409) and records nothing."""
    try:
        with transaction.atomic():  # a savepoint: the unique constraint answers without ending the caller's
            _APPROVAL.insert(
                Approval(
                    proposal=locked,
                    reviewer=reviewer,
                    args_hash=locked.args_hash,
                    comment=comment,
                    **where_fields(where),
                )
            )
    except IntegrityError:
        given = rules.counted_approvals(locked).count()
        raise errors.AlreadyApproved(
            errors.ALREADY_APPROVED.format(missing=max(0, locked.approvals_required - given)),
            missing=max(0, locked.approvals_required - given),
        ) from None
    # Read as rows, not counted: the answer shows them (the serializer takes them from here, no second read).
    counted = list(rules.counted_approvals(locked))
    locked.prefetched_approvals = counted  # type: ignore[attr-defined]
    return len(counted)


def approval_recorded(
    locked: Proposal,
    reviewer: User,
    *,
    given: int,
    comment: str,
    where: Where,
    edits: list[dict[str, Any]] | None,
    fields: list[str],
) -> Proposal:
    """An approval that leaves the quorum short: the proposal stays pending (its edited fields saved, when
    the reviewer edited it), audited as ``proposal.approval_recorded``; its Slack message shows the count."""
    if fields:
        locked.save(update_fields=[*fields, "updated_at"])
    _audit_proposal(
        locked,
        actor=user_actor(reviewer),
        action="proposal.approval_recorded",
        where=where,
        data={
            "by": reviewer.get_username(),
            "args_hash": locked.args_hash,
            "comment": comment,
            "given": given,
            "required": locked.approvals_required,
            "edited": bool(edits),
            "edits": edits or [],
            **({"args": locked.args} if edits else {}),
        },
        fields=fields,
    )
    slack_notify.stage_sync(locked)
    return locked
