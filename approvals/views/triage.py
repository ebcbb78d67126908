"""Triage from the proposal page: snooze it (it leaves this reviewer's "for you" list for 1 hour, 4 hours or
until tomorrow 09:00) or reassign it (to a reviewer or a reviewer group of its tenant). Both go through
``approvals.services`` (``proposal_snooze``, ``proposal_reassign``), which check who may, audit, and change
neither the status nor the expiry."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from approvals import errors, selectors, services
from approvals.models import REVIEW_ROLES, Proposal, ReviewerGroup, Status
from approvals.views.base import _forbidden, _person, _visible, _where
from approvals.views.review import _conflict

NOT_ALLOWED_TO_REASSIGN = "Only a reviewer of this tenant can reassign its proposals."
NO_SUCH_TARGET = "No reviewer or reviewer group of this tenant by that choice; nothing was changed."


def snooze_until(choice: str, now: datetime | None = None) -> datetime | None:
    """The end of a snooze chosen on the page (``SNOOZES``), in the server's time zone; None for anything
    else."""
    now = timezone.localtime(now or timezone.now())
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "4h":
        return now + timedelta(hours=4)
    if choice == "tomorrow":
        return datetime.combine(now.date() + timedelta(days=1), time(9), tzinfo=now.tzinfo)
    return None


@login_required
@require_POST
def proposal_snooze(request: HttpRequest, pk: Any) -> HttpResponse:
    proposal = _visible(request, pk)
    until = snooze_until(request.POST.get("until", ""))
    if until is None:
        messages.error(request, "Choose how long to snooze it.")
        return redirect("proposal-review", pk=pk)
    try:
        services.proposal_snooze(
            proposal=proposal, reviewer=_person(request), until=until, where=_where(request)
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except errors.DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("proposal-review", pk=pk)
    messages.success(
        request,
        f"Snoozed until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}: it leaves your “for you” list until then.",
    )
    return redirect("proposal-review", pk=pk)


def _reassign_target(proposal: Proposal, choice: str) -> tuple[User | None, ReviewerGroup | None] | None:
    """``user:<id>`` or ``group:<id>``, looked up in the proposal's tenant only: another tenant's person or
    group is not found, exactly like one that does not exist."""
    kind, _, raw = choice.partition(":")
    if not raw.isdigit():
        return None
    if kind == "group":
        group = ReviewerGroup.objects.filter(pk=int(raw), tenant_id=proposal.tenant_id).first()
        return (None, group) if group is not None else None
    if kind == "user":
        user = User.objects.filter(pk=int(raw), memberships__tenant_id=proposal.tenant_id).first()
        return (user, None) if user is not None else None
    return None


def _choices(proposal: Proposal) -> dict[str, Any]:
    """The tenant's reviewer groups and its active reviewers and admins: whom it can be handed to."""
    people = (
        User.objects.filter(
            is_active=True,
            memberships__tenant_id=proposal.tenant_id,
            memberships__role__in=list(REVIEW_ROLES),
        )
        .distinct()
        .order_by("username")
    )
    groups = ReviewerGroup.objects.filter(tenant_id=proposal.tenant_id).order_by("name")
    return {"proposal": proposal, "people": people, "groups": groups}


@login_required
@require_http_methods(["GET", "POST"])
def proposal_reassign(request: HttpRequest, pk: Any) -> HttpResponse:
    """GET: the choice of a reviewer or group of the proposal's tenant. POST ``to=user:<id>|group:<id>``."""
    proposal = _visible(request, pk)
    if proposal.status != Status.PENDING:
        return _conflict(request, pk)
    if not selectors.may_review(_person(request), proposal.tenant_id):
        return _forbidden(request, NOT_ALLOWED_TO_REASSIGN)  # before anything of the choice is looked up
    if request.method == "GET":
        return render(request, "approvals/reassign.html", _choices(proposal))
    target = _reassign_target(proposal, request.POST.get("to", ""))
    if target is None:
        messages.error(request, NO_SUCH_TARGET)
        return redirect("proposal-review", pk=pk)
    to_user, to_group = target
    try:
        reassigned = services.proposal_reassign(
            proposal=proposal, by=_person(request), to_user=to_user, to_group=to_group, where=_where(request)
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except errors.DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("proposal-review", pk=pk)
    group = reassigned.review_group.name if reassigned.review_group else ""
    to = to_user.get_username() if to_user else f"the group {group}"
    messages.success(request, f"Reassigned to {to}.")
    return redirect("proposal-review", pk=pk)
