"""Triage: a reviewer snoozes a proposal (it leaves their "for you" list until a time) or hands it to another
reviewer or reviewer group. Both are audited (``proposal.snoozed``, ``proposal.reassigned``) and change
neither the proposal's status nor its expiry: a snoozed proposal still expires on time, and whoever it is
handed to decides under the same rules (``services.require_reviewer``).

Who may: snooze, anyone who may decide on it (``rules.may_decide``); reassign, an admin of its tenant or a
member of the group it is routed to (anyone who may decide on it while it is not routed). The target must be
of the proposal's tenant: another tenant's group or person is ``not_found``, as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.utils import timezone

from approvals import errors, rules, selectors
from approvals.models import Membership, Proposal, ReviewerGroup, ReviewSnooze, Role
from approvals.services.base import _audit_proposal, user_actor
from approvals.services.decide import _on_pending
from audit.services import Where

NOT_ALLOWED_TO_SNOOZE = "Only a reviewer who may decide on this proposal can snooze it."
NOT_ALLOWED_TO_REASSIGN = (
    "Only an admin of this tenant, or a member of the reviewer group it is routed to, can reassign it."
)
SNOOZE_IN_THE_PAST = "A snooze ends in the future."
REASSIGN_TO_NOBODY = "Reassign to a reviewer, a reviewer group, or both."
TARGET_NOT_FOUND = "No {what} of this tenant by that name."
FOR_THEMSELVES = "It was made on behalf of {user}, so they cannot decide on it."
NOT_IN_NEW_GROUP = "{user} is not a member of the reviewer group {group}, so they could not decide on it."


class TargetNotFound(errors.DomainError):
    """A reassignment to a person or group the proposal's tenant does not have (or another tenant's)."""

    status = 404
    code = "not_found"


def proposal_snooze(*, proposal: Proposal, reviewer: User, until: datetime, where: Where) -> ReviewSnooze:
    """Hide ``proposal`` from ``reviewer``'s "for you" list until ``until`` (a later snooze replaces it)."""
    if not rules.may_decide(reviewer, proposal):
        raise errors.NotAllowed(NOT_ALLOWED_TO_SNOOZE)
    if until <= timezone.now():
        raise errors.DomainError(SNOOZE_IN_THE_PAST)

    def change(locked: Proposal) -> Proposal:
        ReviewSnooze.objects.update_or_create(proposal=locked, user=reviewer, defaults={"until": until})
        _audit_proposal(
            locked,
            actor=user_actor(reviewer),
            action="proposal.snoozed",
            where=where,
            data={"until": until.isoformat()},
        )
        return locked

    locked = _on_pending(proposal.pk, "snoozed", change)
    return ReviewSnooze.objects.get(proposal=locked, user=reviewer)


def _may_reassign(by: User, proposal: Proposal) -> bool:
    if not selectors.may_review(by, proposal.tenant_id):
        return False
    is_admin = Membership.objects.filter(user=by, tenant_id=proposal.tenant_id, role=Role.ADMIN).exists()
    return is_admin or rules.in_review_group(by, proposal)


def proposal_reassign(
    *,
    proposal: Proposal,
    by: User,
    where: Where,
    to_user: User | None = None,
    to_group: ReviewerGroup | None = None,
) -> Proposal:
    """Route ``proposal`` to ``to_group`` (who may decide changes) and/or hand it to ``to_user`` (whose "for
    you" list it then heads). ``to_user`` must be a reviewer of the tenant, in the group it ends up routed to."""
    if to_user is None and to_group is None:
        raise errors.DomainError(REASSIGN_TO_NOBODY)
    if not _may_reassign(by, proposal):
        raise errors.NotAllowed(NOT_ALLOWED_TO_REASSIGN)
    if to_group is not None and to_group.tenant_id != proposal.tenant_id:
        raise TargetNotFound(TARGET_NOT_FOUND.format(what="reviewer group"))
    if to_user is not None and not (to_user.is_active and selectors.may_review(to_user, proposal.tenant_id)):
        raise TargetNotFound(TARGET_NOT_FOUND.format(what="reviewer"))
    if to_user is not None and to_user.pk == proposal.on_behalf_of_id:
        # Handed to the person it was made for, it would leave everyone's "for you" list, decidable by nobody.
        raise errors.DomainError(FOR_THEMSELVES.format(user=to_user.get_username()))

    def change(locked: Proposal) -> Proposal:
        before = {
            "group": locked.review_group.name if locked.review_group else None,
            "assignee": locked.assignee.get_username() if locked.assignee else None,
        }
        if to_group is not None:
            locked.review_group = to_group
        if to_user is not None:
            if not rules.in_review_group(to_user, locked):
                raise errors.DomainError(
                    NOT_IN_NEW_GROUP.format(
                        user=to_user.get_username(),
                        group=locked.review_group.name if locked.review_group else "",
                    )
                )
            locked.assignee = to_user
        elif locked.assignee is not None and not rules.in_review_group(locked.assignee, locked):
            locked.assignee = None  # handed to a group their assignee is not in: nobody in particular
        locked.save(update_fields=["review_group", "assignee", "updated_at"])
        _audit_proposal(
            locked,
            actor=user_actor(by),
            action="proposal.reassigned",
            where=where,
            data={
                "from": before,
                "to": {
                    "group": locked.review_group.name if locked.review_group else None,
                    "assignee": locked.assignee.get_username() if locked.assignee else None,
                },
            },
        )
        return locked

    return _on_pending(proposal.pk, "reassigned", change)
