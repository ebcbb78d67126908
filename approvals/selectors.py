"""Reads. Every query here is scoped to what the caller may see: another tenant's rows never match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from approvals.models import (
    AgentCredential,
    Approval,
    Membership,
    Proposal,
    ReviewerGroup,
    ReviewSnooze,
    Tenant,
    role_reviews,
)


def reviewer_tenant_ids(user: User) -> list[int]:
    return list(PersonScope.of(user).review)


def may_review(user: User, tenant_id: int) -> bool:
    """The review permission: whether ``user`` may approve, reject or edit ``tenant_id``'s proposals (a
    reviewer's or an admin's membership, ``models.role_reviews``). Services and views ask this; the
    tenants come from the scope the request already read to find the proposal (once per request)."""
    return tenant_id in PersonScope.of(user).review


def proposals_visible_to(principal: Any) -> QuerySet[Proposal]:
    """An agent sees its own proposals; a person sees their tenants' (as reviewer/admin) and those made on
    their behalf."""
    base = Proposal.objects.select_related("tenant", "agent", "on_behalf_of", "receipt")
    if isinstance(principal, AgentCredential):
        return base.filter(agent=principal)
    if principal is None or not getattr(principal, "is_authenticated", False):
        return base.none()
    return base.filter(person_scope(principal))


@dataclass(frozen=True)
class PersonScope:
    """The tenants a person reviews in, and those where they only see what was asked on their behalf."""

    review: list[int]
    requester: list[int]

    @classmethod
    def of(cls, user: User) -> PersonScope:
        """Read once per user object, i.e. once per request (authentication loads the user afresh for each
        request), however many times the request asks: the approve endpoint, say, asks before and after."""
        cached = getattr(user, "_acme_person_scope", None)
        if isinstance(cached, PersonScope):
            return cached
        scope = cls._read(user)
        setattr(user, "_acme_person_scope", scope)  # noqa: B010 (not a field of the model)
        return scope

    @classmethod
    def _read(cls, user: User) -> PersonScope:
        review: list[int] = []
        requester: list[int] = []
        for tenant_id, role in Membership.objects.filter(user=user).values_list("tenant_id", "role"):
            (review if role_reviews(role) else requester).append(tenant_id)
        return cls(review=review, requester=requester)

    def q(self, user: User) -> Q:
        # Spelled so that the common case (a reviewer) is a plain ``tenant_id IN (...)`` that the list
        # indexes serve, without an OR across all tenants to defeat them.
        scope = Q(tenant_id__in=self.review)
        if self.requester:
            scope |= Q(tenant_id__in=self.requester, on_behalf_of=user)
        return scope


def person_scope(user: User) -> Q:
    """A person's proposals: every one in the tenants they review; elsewhere, those made on their behalf."""
    return PersonScope.of(user).q(user)


def proposal_list(
    *, principal: Any, status: str | None = None, tool: str | None = None
) -> QuerySet[Proposal]:
    qs = proposals_visible_to(principal)
    if status:
        qs = qs.filter(status=status)
    if tool:
        qs = qs.filter(tool=tool)
    return qs


def for_you(user: User, qs: QuerySet[Proposal]) -> QuerySet[Proposal]:
    """The proposals of ``qs`` that wait for ``user``: in a tenant they review, not made on their behalf,
    routed to a group they are in or not routed, handed to them or to nobody in particular; neither snoozed
    by them (until a time still ahead) nor already approved by them as the args stand."""
    return (
        qs.filter(tenant_id__in=PersonScope.of(user).review)
        .exclude(on_behalf_of=user)
        .filter(Q(review_group__isnull=True) | Q(review_group__in=ReviewerGroup.objects.filter(members=user)))
        .filter(Q(assignee__isnull=True) | Q(assignee=user))
        .exclude(
            Exists(ReviewSnooze.objects.filter(proposal=OuterRef("pk"), user=user, until__gt=timezone.now()))
        )
        .exclude(
            Exists(
                Approval.objects.filter(
                    proposal=OuterRef("pk"), reviewer=user, args_hash=OuterRef("args_hash")
                )
            )
        )
    )


def tenant_member(*, tenant: Tenant, username: str) -> User | None:
    membership = (
        Membership.objects.select_related("user").filter(tenant=tenant, user__username=username).first()
    )
    return membership.user if membership else None
