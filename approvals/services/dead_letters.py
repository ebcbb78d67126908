"""Dead letters: failed commits an admin requeues (failed → approved) or discards (it stays failed)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from approvals import errors, lifecycle
from approvals.models import (
    Proposal,
    Verdict,
)
from approvals.services.base import _audit_proposal, _locked, user_actor
from audit.services import Where


def proposal_requeue(*, proposal: Proposal, admin: User, where: Where) -> Proposal:
    """failed → approved, and stage the commit again (an admin's decision, audited). The approval it rests
    on is unchanged: the same args, the same hash, the same idempotency key towards the outside system."""
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if not lifecycle.is_dead_letter(locked):
            raise errors.InvalidTransition(
                errors.INVALID_STATE.format(
                    status=locked.status, action="requeued", allowed="failed and not discarded"
                )
            )
        decision = locked.decisions.filter(verdict=Verdict.APPROVED).first()
        locked.next_attempt_at = timezone.now()
        lifecycle.transition(
            locked,
            "requeue",
            actor=user_actor(admin),
            where=where,
            decision=decision,
            fields=["next_attempt_at"],
        )
    return locked


def proposal_discard(*, proposal: Proposal, admin: User, where: Where) -> Proposal:
    """Take a failed commit out of the dead letters for good; it stays failed."""
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if not lifecycle.is_dead_letter(locked):
            raise errors.InvalidTransition(
                errors.INVALID_STATE.format(
                    status=locked.status, action="discarded", allowed="failed and not discarded"
                )
            )
        locked.discarded_at = timezone.now()
        locked.save(update_fields=["discarded_at", "updated_at"])
        _audit_proposal(locked, actor=user_actor(admin), action="proposal.discarded", where=where)
    return locked
