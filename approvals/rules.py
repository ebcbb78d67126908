"""Approval rules, read: how far a proposal's quorum is (``approvals_state``) and whether a person may decide
on it (``may_decide``). Pure reads, used by the services (which decide under the proposal's row lock), the
API, the web pages and Slack, so that what they show is what the services enforce.

The quorum counts ``Approval`` rows on the proposal's *current* args hash (an edit restarts the count: the
others approved other args), one per person (a unique constraint), never the requester's, and only those of
people who may still decide (an active reviewer of the tenant, in the proposal's group when it is routed):
taking someone out of the group or the tenant withdraws the approvals they gave to what is still pending.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from functools import reduce
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from approvals import errors, selectors
from approvals.models import REVIEW_ROLES, Approval, Proposal, ReviewerGroup, Status


def in_review_group(user: User, proposal: Proposal) -> bool:
    """Whether ``user`` may decide as far as routing goes: the proposal is not routed, or they are a member
    of the group it is routed to."""
    if proposal.review_group_id is None:
        return True
    return ReviewerGroup.members.through.objects.filter(
        reviewergroup_id=proposal.review_group_id, user_id=user.pk
    ).exists()


def require_review_group(user: User, proposal: Proposal) -> None:
    """Raise NotInReviewGroup (403 not_in_review_group) unless ``in_review_group``."""
    if not in_review_group(user, proposal):
        names = ReviewerGroup.objects.filter(id=proposal.review_group_id or 0).values_list("name", flat=True)
        raise errors.NotInReviewGroup(errors.NOT_IN_REVIEW_GROUP.format(group=names.first() or "?"))


def may_decide(user: User, proposal: Proposal) -> bool:
    """A reviewer or admin of the proposal's tenant, not the person it was made for, in its group if routed
    (what ``services.require_reviewer`` enforces)."""
    return (
        getattr(user, "is_authenticated", False)
        and selectors.may_review(user, proposal.tenant_id)
        and proposal.on_behalf_of_id != user.pk
        and in_review_group(user, proposal)
    )


def _counted(proposal: Proposal) -> Q:
    """The condition an approval meets to count towards the quorum of ``proposal`` as it stands (see the module
    docstring); ``proposal``'s fields as they are in memory (under the lock, an edit not yet saved)."""
    counted = Q(
        proposal_id=proposal.pk,
        args_hash=proposal.args_hash,
        reviewer__is_active=True,
        reviewer__memberships__tenant_id=proposal.tenant_id,
        reviewer__memberships__role__in=list(REVIEW_ROLES),
    )
    if proposal.on_behalf_of_id is not None:
        counted &= ~Q(reviewer_id=proposal.on_behalf_of_id)
    if proposal.review_group_id is not None:
        counted &= Q(reviewer__reviewer_groups=proposal.review_group_id)
    return counted


def counted_approvals(proposal: Proposal) -> QuerySet[Approval]:
    """The approvals that count towards the quorum of ``proposal`` as it stands (see the module docstring)."""
    return Approval.objects.filter(_counted(proposal)).select_related("reviewer").order_by("at", "id")


def counted_approvals_of(proposals: Iterable[Proposal]) -> dict[Any, list[Approval]]:
    """``counted_approvals`` of several proposals (a page of a list) in one query, by proposal id."""
    proposals = list(proposals)
    by_proposal: dict[Any, list[Approval]] = {p.pk: [] for p in proposals}
    if not proposals:
        return by_proposal
    # distinct: an unrouted proposal's branch joins the reviewer's groups that a routed one's branch needs.
    approvals = (
        Approval.objects.filter(reduce(operator.or_, (_counted(p) for p in proposals)))
        .select_related("reviewer")
        .order_by("at", "id")
        .distinct()
    )
    for approval in approvals:
        by_proposal[approval.proposal_id].append(approval)
    return by_proposal


def approvals_state(proposal: Proposal, counted: Iterable[Approval] | None = None) -> dict[str, Any]:
    """``{"required", "given": [{"by", "at", "args_hash", "comment"}], "missing"}``: the approvals counted on
    the current args; ``missing`` is 0 once the proposal is no longer pending. ``counted``: the proposal's
    ``counted_approvals`` when already read (a list reads its page's with ``counted_approvals_of``)."""
    given = [
        {
            "by": approval.reviewer.get_username(),
            "at": approval.at.isoformat(),
            "args_hash": approval.args_hash,
            "comment": approval.comment,
        }
        for approval in (counted_approvals(proposal) if counted is None else counted)
    ]
    required = proposal.approvals_required
    missing = max(0, required - len(given)) if proposal.status == Status.PENDING else 0
    return {"required": required, "given": given, "missing": missing}
